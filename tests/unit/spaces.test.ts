import { describe, expect, it } from 'vitest'
import { fold } from '../../domain/decider.ts'
import { SPACE_NAME_MAX, type SpaceEvent, space } from '../../domain/spaces.ts'
import { spec } from './spec.ts'

const at = '2026-11-28T10:00:00.000Z'
const spaceId = 'space-1'
const personal: SpaceEvent = { type: 'space.created', data: { spaceId, name: 'Mine', kind: 'personal', ownerId: 'alice', at } }
const shared: SpaceEvent = { type: 'space.created', data: { spaceId, name: 'Team', kind: 'public', ownerId: 'alice', at } }
const create = (over: Partial<{ name: string; actorIsGuest: boolean; kind: 'personal' | 'public' }> = {}) => ({
  type: 'create' as const,
  spaceId,
  name: 'Team',
  kind: 'public' as const,
  actorId: 'alice',
  actorIsGuest: false,
  at,
  ...over,
})
const update = (name: string, actorId: string, actorIsAdmin = false) =>
  ({ type: 'update', spaceId, name, actorId, actorIsAdmin, at }) as const

describe('spaces', () => {
  const rules = spec(space)

  it('a member creates a space they own, its name trimmed', () =>
    rules
      .given([])
      .when(create({ name: '  Team  ' }))
      .then([shared]))

  it('a space is created once', () => rules.given([shared]).when(create()).thenRefused('SPACE_EXISTS', 'conflict'))

  it('guests do not create spaces', () =>
    rules
      .given([])
      .when(create({ actorIsGuest: true }))
      .thenRefused('FORBIDDEN', 'forbidden'))

  it('a space name has 1 to 80 characters once trimmed', () => {
    const long = 'x'.repeat(SPACE_NAME_MAX)
    rules
      .given([])
      .when(create({ name: `  ${long}  ` }))
      .then([{ ...shared, data: { ...shared.data, name: long } }])
    rules
      .given([])
      .when(create({ name: `${long}y` }))
      .thenRefused('SPACE_NAME_INVALID')
    rules
      .given([])
      .when(create({ name: '   ' }))
      .thenRefused('SPACE_NAME_INVALID')
    rules.given([shared]).when(update('', 'alice')).thenRefused('SPACE_NAME_INVALID')
  })

  it('a space that was never created cannot be changed', () => {
    rules
      .given([])
      .when(update('New', 'alice', true))
      .thenRefused('SPACE_NOT_FOUND', 'not_found')
    expect(fold(space, [])).toEqual({ exists: false })
    expect(fold(space, [{ type: 'space.updated', data: { spaceId, name: 'New', at } }])).toEqual({ exists: false })
  })

  it('a public space is renamed by its owner or an admin, nobody else', () => {
    const renamed: SpaceEvent = { type: 'space.updated', data: { spaceId, name: 'Crew', at } }
    rules.given([shared]).when(update(' Crew ', 'alice')).then([renamed])
    rules
      .given([shared])
      .when(update('Crew', 'adam', true))
      .then([renamed])
    rules.given([shared]).when(update('Crew', 'bob')).thenRefused('FORBIDDEN', 'forbidden')
  })

  it('a personal space is renamed by its owner only, not even by an admin', () => {
    rules
      .given([personal])
      .when(update('Ours', 'alice'))
      .then([{ type: 'space.updated', data: { spaceId, name: 'Ours', at } }])
    rules
      .given([personal])
      .when(update('Ours', 'adam', true))
      .thenRefused('FORBIDDEN', 'forbidden')
  })

  it('renaming to the current name changes nothing', () => {
    rules.given([shared]).when(update(' Team ', 'alice')).then([])
    rules
      .given([shared, { type: 'space.updated', data: { spaceId, name: 'Crew', at } }])
      .when(update('Crew', 'alice'))
      .then([])
  })

  it('the state is the space as created, then renamed', () =>
    expect(fold(space, [personal, { type: 'space.updated', data: { spaceId, name: 'Ours', at } }])).toEqual({
      exists: true,
      name: 'Ours',
      kind: 'personal',
      ownerId: 'alice',
    }))
})
