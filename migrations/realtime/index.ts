import * as m000 from './000_app_login.ts'
import * as m001 from './001_user_events.ts'
import * as m002 from './002_outbox.ts'
import * as m003 from './003_queue_presence.ts'

export const schema = 'realtime'
export const migrations = { '000_app_login': m000, '001_user_events': m001, '002_outbox': m002, '003_queue_presence': m003 }
