import * as m001 from './001_init.ts'
import * as m002 from './002_messaging.ts'
import * as m003 from './003_identity.ts'
import * as m004 from './004_fanout.ts'
import * as m005 from './005_tombstones.ts'
import * as m010 from './010_drafts_table.ts'

export const schema = 'tenant'
export const migrations = {
  '001_init': m001,
  '002_messaging': m002,
  '003_identity': m003,
  '004_fanout': m004,
  '005_tombstones': m005,
  '010_drafts_table': m010,
}
