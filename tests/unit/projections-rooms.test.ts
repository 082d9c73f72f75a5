import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import type { RoomEvent } from '../../domain/rooms.ts'
import { type RoomMemberRow, type RoomRow, roomMemberRows, roomRows, roomsProjector } from '../../projections/rooms.ts'
import { type AnyRowModel, evolveTable, type Row, rowProjector } from '../../projections/rows.ts'
import { projectionSpec } from '../support/projection-spec.ts'

const t0 = '2026-11-28T10:00:00.000Z'
const t1 = '2026-11-28T11:00:00.000Z'
const t2 = '2026-11-28T12:00:00.000Z'
const roomId = 'room-1'

const created = (over: Partial<Extract<RoomEvent, { type: 'room.created' }>['data']> = {}) =>
  ({
    type: 'room.created',
    data: {
      roomId,
      name: 'General',
      description: '',
      spaceId: 'space-1',
      visibility: 'public',
      kind: 'room',
      createdBy: 'alice',
      members: [
        { memberId: 'alice', memberType: 'user' },
        { memberId: 'bot', memberType: 'agent' },
      ],
      at: t0,
      ...over,
    },
  }) satisfies RoomEvent
const updated = (data: { name?: string; description?: string }, at = t1, id = roomId) =>
  ({ type: 'room.updated', data: { roomId: id, ...data, at } }) satisfies RoomEvent
const archived = (at = t2, id = roomId) =>
  ({ type: 'room.archived', data: { roomId: id, archivedBy: 'alice', at } }) satisfies RoomEvent
const added = (memberId: string, at = t1, id = roomId, memberType: 'user' | 'agent' = 'user') =>
  ({ type: 'room.member_added', data: { roomId: id, memberId, memberType, addedBy: 'alice', at } }) satisfies RoomEvent
const removed = (memberId: string, at = t2, id = roomId) =>
  ({ type: 'room.member_removed', data: { roomId: id, memberId, removedBy: 'alice', at } }) satisfies RoomEvent

const general: RoomRow = {
  id: roomId,
  name: 'General',
  description: '',
  space_id: 'space-1',
  visibility: 'public',
  kind: 'room',
  created_by: 'alice',
  archived: false,
  created_at: t0,
  updated_at: t0,
}
const member = (member_id: string, joined_at = t0, member_type: 'user' | 'agent' = 'user', room_id = roomId): RoomMemberRow => ({
  room_id,
  member_id,
  member_type,
  joined_at,
})
const alice = member('alice')
const bot = member('bot', t0, 'agent')

type RoomLifecycle = Exclude<RoomEvent, { type: 'message.range_deleted' }>

/** The table after the batch, applied in the batches `bounds` cut it into, each starting from the rows the last left. */
const inBatches = <R extends Row>(model: AnyRowModel<RoomLifecycle, R>, batch: readonly RoomLifecycle[], bounds: number[]) => {
  let rows: R[] = []
  for (let i = 1; i < bounds.length; i++) rows = evolveTable(model, rows, batch.slice(bounds[i - 1], bounds[i])).rows
  return rows
}

/** The member rows after the events, and what the applier would write. */
const members = (given: readonly RoomMemberRow[], ...events: RoomEvent[]) =>
  evolveTable(roomMemberRows, given, events as RoomLifecycle[])

describe('rooms read model', () => {
  const rooms = projectionSpec(roomRows)

  it('a created room is an unarchived row, created and updated at its time', () =>
    rooms.given([]).when(created()).then([general]))

  it('an edit changes what it names and when the room changed', () => {
    rooms
      .given([general])
      .when(updated({ name: 'Town square' }))
      .then([{ ...general, name: 'Town square', updated_at: t1 }])
    rooms
      .given([general])
      .when(updated({ description: 'all hands' }))
      .then([{ ...general, description: 'all hands', updated_at: t1 }])
  })

  it('an archived room keeps its row, archived', () =>
    rooms
      .given([general])
      .when(archived())
      .then([{ ...general, archived: true, updated_at: t2 }]))

  it('a repeated creation keeps the first row (and writes nothing)', () =>
    rooms
      .given([general])
      .when(created({ name: 'Other', at: t1 }))
      .thenWrites({ upserts: [], deletes: [] }))

  it('membership events do not touch the room row', () =>
    rooms.given([general]).when(added('carol'), removed('alice')).thenWrites({ upserts: [], deletes: [] }))

  it('events about a room with no row change nothing', () =>
    rooms
      .given([general])
      .when(updated({ name: 'Ghost' }, t1, 'room-9'), archived(t2, 'room-9'))
      .then([general]))

  it('a room created, renamed and archived in one batch is written once, as it ends up', () =>
    rooms
      .given([])
      .when(created(), updated({ name: 'Old' }), archived())
      .thenWrites({ upserts: [{ ...general, name: 'Old', archived: true, updated_at: t2 }], deletes: [] }))
})

describe('room members read model', () => {
  it('a created room has a row for each of its members, joined when it was created', () =>
    expect(members([], created()).rows).toEqual([alice, bot]))

  it('an added member has a row from when they were added; adding them again keeps it', () => {
    expect(members([alice], added('carol', t1)).rows).toEqual([alice, member('carol', t1)])
    const again = members([alice], added('alice', t2, roomId, 'agent'))
    expect(again.rows).toEqual([alice])
    expect(again.upserts).toEqual([])
  })

  it('a removed member loses their row; removing one with no row deletes nothing', () => {
    const out = members([alice, bot], removed('bot'))
    expect(out.rows).toEqual([alice])
    expect(out.deletes).toEqual([JSON.stringify([roomId, 'bot'])])
    expect(members([alice], removed('carol')).deletes).toEqual([])
  })

  it('rows are told apart by room and member: the same member in two rooms is two rows', () => {
    const other = member('alice', t1, 'user', 'room-2')
    expect(members([alice], added('alice', t1, 'room-2')).rows).toEqual([alice, other])
    expect(members([alice, other], removed('alice', t2, 'room-2')).rows).toEqual([alice])
  })

  it('room edits and archiving touch no member row', () => {
    const out = members([alice, bot], updated({ name: 'x' }), archived())
    expect(out).toEqual({ rows: [alice, bot], upserts: [], deletes: [] })
  })

  it('a member added, removed and added again in one batch is written once, as last added', () => {
    const out = members([alice], added('carol', t0), removed('carol', t1), added('carol', t2))
    expect(out.upserts).toEqual([member('carol', t2)])
    expect(out.deletes).toEqual([])
  })
})

describe('rooms projector', () => {
  it('owns rooms and room_members under the name, version and event types of its checkpoints', () => {
    expect(roomsProjector).toMatchObject({
      name: 'rooms',
      version: 1,
      schema: 'tenant',
      tables: ['rooms', 'room_members'],
      eventTypes: ['room.created', 'room.updated', 'room.member_added', 'room.member_removed', 'room.archived'],
    })
  })

  it('a misspelt event type does not compile', () => {
    rowProjector({
      name: 'typo',
      version: 1,
      schema: 'tenant',
      // @ts-expect-error: not a room event type
      eventTypes: ['room.creatd'],
      models: [roomRows, roomMemberRows],
    })
  })

  const events = fc.array(
    fc.oneof(
      fc
        .record({ id: fc.constantFrom('r1', 'r2'), at: fc.constantFrom(t0, t1, t2) })
        .map(({ id, at }) => created({ roomId: id, at })),
      fc
        .record({ id: fc.constantFrom('r1', 'r2'), name: fc.constantFrom('a', 'b'), at: fc.constantFrom(t1, t2) })
        .map(({ id, name, at }) => updated({ name }, at, id)),
      fc.record({ id: fc.constantFrom('r1', 'r2'), at: fc.constantFrom(t1, t2) }).map(({ id, at }) => archived(at, id)),
      fc
        .record({ id: fc.constantFrom('r1', 'r2'), m: fc.constantFrom('alice', 'bot', 'carol'), at: fc.constantFrom(t1, t2) })
        .map(({ id, m, at }) => added(m, at, id)),
      fc
        .record({ id: fc.constantFrom('r1', 'r2'), m: fc.constantFrom('alice', 'bot', 'carol') })
        .map(({ id, m }) => removed(m, t2, id)),
    ),
    { maxLength: 30 },
  )

  it('a batch applied at once leaves the tables as applying it in any smaller batches does', () => {
    fc.assert(
      fc.property(events, fc.array(fc.nat(30)), (batch, cuts) => {
        const bounds = [...new Set([0, ...cuts.map((c) => Math.min(c, batch.length)), batch.length])].sort((a, b) => a - b)
        expect(inBatches(roomRows, batch, bounds)).toEqual(evolveTable(roomRows, [], batch).rows)
        expect(inBatches(roomMemberRows, batch, bounds)).toEqual(evolveTable(roomMemberRows, [], batch).rows)
      }),
    )
  })
})
