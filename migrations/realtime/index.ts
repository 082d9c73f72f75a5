import * as m001 from './001_user_events.ts'

export const schema = 'realtime'
export const migrations = { '001_user_events': m001 }
