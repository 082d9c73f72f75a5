import { describe, it } from 'vitest'
import type { SpaceEvent } from '../../domain/spaces.ts'
import { type SpaceRow, spaceRows } from '../../projections/spaces.ts'
import { projectionSpec } from '../support/projection-spec.ts'

const t0 = '2026-11-28T10:00:00.000Z'
const t1 = '2026-11-28T11:00:00.000Z'
const t2 = '2026-11-28T12:00:00.000Z'

const created = (spaceId: string, name: string, kind: 'personal' | 'public' = 'public', at = t0) =>
  ({ type: 'space.created', data: { spaceId, name, kind, ownerId: 'alice', at } }) satisfies SpaceEvent
const renamed = (spaceId: string, name: string, at: string) =>
  ({ type: 'space.updated', data: { spaceId, name, at } }) satisfies SpaceEvent

const team: SpaceRow = { id: 'space-1', name: 'Team', kind: 'public', owner_id: 'alice', created_at: t0, updated_at: t0 }

describe('spaces read model', () => {
  const spaces = projectionSpec(spaceRows)

  it('a created space is a row with its owner and kind', () =>
    spaces
      .given([])
      .when(created('space-1', 'Team'), created('space-2', 'Mine', 'personal', t1))
      .then([team, { id: 'space-2', name: 'Mine', kind: 'personal', owner_id: 'alice', created_at: t1, updated_at: t1 }]))

  it('a rename changes the name and when it changed, not when it was created', () =>
    spaces
      .given([team])
      .when(renamed('space-1', 'Crew', t1), renamed('space-1', 'Band', t2))
      .then([{ ...team, name: 'Band', updated_at: t2 }]))

  it('a space created and renamed in one batch is written once, renamed', () =>
    spaces
      .given([])
      .when(created('space-1', 'Team'), renamed('space-1', 'Crew', t1))
      .thenWrites({ upserts: [{ ...team, name: 'Crew', updated_at: t1 }], deletes: [] }))

  it('a repeated creation keeps the first row', () =>
    spaces
      .given([team])
      .when(created('space-1', 'Again', 'personal', t1))
      .thenWrites({ upserts: [], deletes: [] }))

  it('a rename of a space with no row changes nothing', () =>
    spaces
      .given([team])
      .when(renamed('space-9', 'Ghost', t1))
      .then([team]))
})
