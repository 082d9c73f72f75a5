import * as m001 from './001_events.ts'
import * as m002 from './002_append_conditions.ts'
import * as m003 from './003_append_group.ts'
import * as m010 from './010_app_login.ts'

export const schema = 'eventstore'
export const migrations = { '001_events': m001, '002_append_conditions': m002, '003_append_group': m003, '010_app_login': m010 }
