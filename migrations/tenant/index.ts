import * as m001 from './001_init.ts'

export const schema = 'tenant'
export const migrations = { '001_init': m001 }
