import { v7 as uuid } from 'uuid'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { comparePositions, type Position } from '../../adapters/event-store.ts'
import { join, signUp } from '../support/identity.ts'
import { startTestServer, type TestServer } from '../support/server.ts'

// Decisions that read two streams: a message command decides on its room (archived, membership, ranges
// deleted), and must never be accepted against a room that moved meanwhile.

let server: TestServer
let owner: Awaited<ReturnType<typeof signUp>>
let member: { userId: string; token: string }

beforeAll(async () => {
  server = await startTestServer({ RATE_LIMIT_IP_PER_MINUTE: '1000000', RATE_LIMIT_USER_PER_MINUTE: '1000000' })
  owner = await signUp(server, { email: 'owner@decisions.test', orgName: 'Decisions Org', username: 'owner' })
  member = await join(server, owner.token, { email: 'member@decisions.test', role: 'member', username: 'member' })
}, 120_000)
afterAll(async () => {
  await server?.close()
})

const api = (method: string, path: string, token: string, body?: unknown) =>
  server.request(method, path, body === undefined ? { token } : { token, body })

/** Where the newest event of this type stands in the global order, by the stream it was written to. */
async function positionOf(stream: string, type: string, match: (data: Record<string, unknown>) => boolean = () => true) {
  const events = await server.services.store.readStream(stream)
  return events.findLast((e) => e.type === type && match(e.data as Record<string, unknown>))?.position ?? null
}

const sortsBefore = (a: Position, b: Position) => comparePositions(a, b) < 0

describe('posting against a room that moves', () => {
  it('200 rounds of archive or removal racing a post: no message accepted after the archive or removal', async () => {
    const roomId = (await api('POST', '/api/rooms', owner.token, { name: 'Members come and go', visibility: 'private' })).body
      .roomId as string
    let accepted = 0
    for (let round = 0; round < 200; round++) {
      const archive = round % 2 === 0
      const room = archive
        ? ((await api('POST', '/api/rooms', owner.token, { name: `Closing ${round}`, visibility: 'private' })).body
            .roomId as string)
        : roomId
      expect((await api('POST', `/api/rooms/${room}/members`, owner.token, { userId: member.userId })).status).toBe(200)
      const [moved, post] = await Promise.all([
        archive
          ? api('POST', `/api/rooms/${room}/archive`, owner.token)
          : api('DELETE', `/api/rooms/${room}/members/${member.userId}`, owner.token),
        api('POST', `/api/rooms/${room}/messages`, member.token, { text: `round ${round}` }),
      ])
      expect(moved.status).toBe(200)
      const movedAt = await positionOf(
        `room-${room}`,
        archive ? 'room.archived' : 'room.member_removed',
        (d) => archive || d.memberId === member.userId,
      )
      if (post.status === 201) {
        accepted++
        const postedAt = await positionOf(`message-${post.body.messageId}`, 'message.created')
        expect(sortsBefore(postedAt!, movedAt!), `round ${round}: a message accepted after the room moved`).toBe(true)
      } else {
        expect([403, 404, 409, 422]).toContain(post.status)
      }
    }
    // Both outcomes happen: the race is real.
    expect(accepted).toBeGreaterThan(0)
  }, 180_000)

  it('an edit or a reaction racing a delete-range never lands after it', async () => {
    const roomId = (await api('POST', '/api/rooms', owner.token, { name: 'Rewind', visibility: 'public' })).body.roomId
    for (let round = 0; round < 30; round++) {
      const posted = await api('POST', `/api/rooms/${roomId}/messages`, owner.token, { text: `draft ${round}` })
      const id = posted.body.messageId as string
      const [, edit, react] = await Promise.all([
        api('POST', `/api/rooms/${roomId}/messages/delete-range`, owner.token, { fromMessageId: id }),
        api('PATCH', `/api/messages/${id}`, owner.token, { text: `edited ${round}` }),
        api('PUT', `/api/messages/${id}/reactions/thumbsup`, owner.token),
      ])
      const deletedAt = await positionOf(`room-${roomId}`, 'message.range_deleted', (d) =>
        (d.messageIds as string[]).includes(id),
      )
      expect(deletedAt).not.toBeNull()
      for (const [r, type] of [
        [edit, 'message.updated'],
        [react, 'message.reaction_changed'],
      ] as const) {
        const at = await positionOf(`message-${id}`, type)
        if (r.status === 200) expect(sortsBefore(at!, deletedAt!), `round ${round}: ${type} after the range delete`).toBe(true)
        else {
          expect(r.status).toBe(404)
          expect(at).toBeNull()
        }
      }
    }
  }, 120_000)
})

describe('a create retried under the same client-chosen id', () => {
  it('answers the first result when it would record the same, and 409 when it differs', async () => {
    const roomId = uuid()
    const create = () => api('POST', '/api/rooms', owner.token, { id: roomId, name: 'Chosen', visibility: 'public' })
    const first = await create()
    expect(first.status).toBe(201)
    const again = await create()
    expect(again.status).toBe(201)
    expect(again.body).toEqual(first.body)
    const different = await api('POST', '/api/rooms', owner.token, { id: roomId, name: 'Another', visibility: 'public' })
    expect(different.status).toBe(409)

    const messageId = uuid()
    const post = () => api('POST', `/api/rooms/${roomId}/messages`, owner.token, { id: messageId, text: 'once' })
    const posted = await post()
    expect(posted.status).toBe(201)
    expect((await post()).body).toEqual(posted.body)
    expect((await api('POST', `/api/rooms/${roomId}/messages`, owner.token, { id: messageId, text: 'twice' })).status).toBe(409)
    expect(await server.services.store.readStream(`message-${messageId}`)).toHaveLength(1)

    const spaceId = uuid()
    const space = () => api('POST', '/api/spaces', owner.token, { id: spaceId, name: 'Chosen space' })
    const created = await space()
    expect(created.status).toBe(201)
    expect((await space()).body).toEqual(created.body)
  })
})

describe('delete-range', () => {
  it('decides from the event store: messages not yet projected are deleted too, without waiting for projections', async () => {
    const roomId = (await api('POST', '/api/rooms', owner.token, { name: 'Unprojected', visibility: 'public' })).body.roomId
    const kept = await api('POST', `/api/rooms/${roomId}/messages`, owner.token, { text: 'keep me' })
    await api('GET', `/api/rooms/${roomId}/messages?consistentAfter=${kept.body.position}`, owner.token)
    await server.services.engine!.stop()
    const ids: string[] = []
    for (let i = 0; i < 4; i++)
      ids.push((await api('POST', `/api/rooms/${roomId}/messages`, owner.token, { text: `rewind ${i}` })).body.messageId)
    await api('DELETE', `/api/messages/${ids[2]}`, owner.token)
    const started = Date.now()
    const r = await api('POST', `/api/rooms/${roomId}/messages/delete-range`, owner.token, { fromMessageId: ids[0] })
    expect(r.status).toBe(200)
    // The deleted message is not counted twice; the projector being stopped did not hold the command back.
    expect(r.body.deleted).toBe(3)
    expect(Date.now() - started).toBeLessThan(3_000)
    const event = (await server.services.store.readStream(`room-${roomId}`)).find((e) => e.type === 'message.range_deleted')
    expect((event!.data as { messageIds: string[] }).messageIds).toEqual([ids[0], ids[1], ids[3]])
    const bounded = await api('POST', `/api/rooms/${roomId}/messages/delete-range`, owner.token, {
      fromMessageId: kept.body.messageId,
      toMessageId: kept.body.messageId,
    })
    expect(bounded.body.deleted).toBe(1)
  })
})
