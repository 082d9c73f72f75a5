import * as m001 from './001_init.ts'
import * as m002 from './002_messaging.ts'
import * as m003 from './003_identity.ts'
import * as m004 from './004_fanout.ts'
import * as m005 from './005_tombstones.ts'
import * as m010 from './010_drafts_table.ts'
import * as m020 from './020_tasks.ts'
import * as m030 from './030_artifacts.ts'
import * as m040 from './040_usage.ts'
import * as m060 from './060_task_messages.ts'
import * as m061 from './061_task_schedules_action_items.ts'
import * as m070 from './070_agent_runs.ts'
import * as m071 from './071_action_items_runs.ts'
import * as m080 from './080_agents.ts'
import * as m081 from './081_agent_allowed_tools.ts'

export const schema = 'tenant'
export const migrations = {
  '001_init': m001,
  '002_messaging': m002,
  '003_identity': m003,
  '004_fanout': m004,
  '005_tombstones': m005,
  '010_drafts_table': m010,
  '020_tasks': m020,
  '030_artifacts': m030,
  '040_usage': m040,
  '060_task_messages': m060,
  '061_task_schedules_action_items': m061,
  '070_agent_runs': m070,
  '071_action_items_runs': m071,
  '080_agents': m080,
  '081_agent_allowed_tools': m081,
}
