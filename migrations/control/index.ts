import * as m001 from './001_init.ts'
import * as m002 from './002_identity.ts'
import * as m003 from './003_replay_cache.ts'
import * as m005 from './005_idempotency.ts'
import * as m006 from './006_parked_events.ts'
import * as m007 from './007_login_roles.ts'
import * as m008 from './008_data_keys.ts'
import * as m009 from './009_parking_by_app.ts'
import * as m010 from './010_processors.ts'
import * as m011 from './011_timers.ts'
import * as m012 from './012_dev_mailbox.ts'
import * as m013 from './013_sent_mail.ts'
import * as m050 from './050_operators_and_org_policy.ts'
import * as m070 from './070_agent_run_queue.ts'
import * as m071 from './071_agent_task_waits.ts'

export const schema = 'control'
export const migrations = {
  '001_init': m001,
  '002_identity': m002,
  '003_replay_cache': m003,
  '005_idempotency': m005,
  '006_parked_events': m006,
  '007_login_roles': m007,
  '008_data_keys': m008,
  '009_parking_by_app': m009,
  '010_processors': m010,
  '011_timers': m011,
  '012_dev_mailbox': m012,
  '013_sent_mail': m013,
  '050_operators_and_org_policy': m050,
  '070_agent_run_queue': m070,
  '071_agent_task_waits': m071,
}
