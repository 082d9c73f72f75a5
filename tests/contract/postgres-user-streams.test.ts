import { postgresHarness } from '../support/user-streams.ts'
import { userStreamsContract } from './user-streams.contract.ts'

userStreamsContract('Postgres', postgresHarness)
