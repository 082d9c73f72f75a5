import * as m001 from './001_events.ts'

export const schema = 'eventstore'
export const migrations = { '001_events': m001 }
