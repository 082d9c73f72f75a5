import { afterAll, beforeAll, expect, it } from 'vitest'
import { join, signUp } from '../support/identity.ts'
import { startTestServer, type TestServer } from '../support/server.ts'

let server: TestServer
let owner: Awaited<ReturnType<typeof signUp>>
let members: { userId: string; token: string }[]

beforeAll(async () => {
  server = await startTestServer({ RATE_LIMIT_IP_PER_MINUTE: '1000000', RATE_LIMIT_USER_PER_MINUTE: '1000000' })
  owner = await signUp(server, { email: 'owner@conc.test', orgName: 'Concurrency Org', username: 'owner' })
  members = []
  for (let i = 0; i < 6; i++)
    members.push(await join(server, owner.token, { email: `m${i}@conc.test`, role: 'member', username: `m${i}` }))
}, 120_000)
afterAll(async () => {
  await server?.close()
})

it('many writers in one room: every acknowledged message is there, once, in one order', async () => {
  const room = await server.request('POST', '/api/rooms', { token: owner.token, body: { name: 'Busy', visibility: 'private' } })
  for (const m of members)
    await server.request('POST', `/api/rooms/${room.body.roomId}/members`, { token: owner.token, body: { userId: m.userId } })
  const writers = [owner, ...members]
  const results = await Promise.all(
    writers.flatMap((w, i) =>
      Array.from({ length: 15 }, (_, j) =>
        server.request('POST', `/api/rooms/${room.body.roomId}/messages`, { token: w.token, body: { text: `w${i} #${j}` } }),
      ),
    ),
  )
  expect(results.every((r) => r.status === 201)).toBe(true)
  const last = Math.max(...results.map((r) => r.body.position))
  const timeline = await server.request('GET', `/api/rooms/${room.body.roomId}/messages?limit=200&consistentAfter=${last}`, {
    token: owner.token,
  })
  const ids = timeline.body.items.map((m: { id: string }) => m.id)
  expect(new Set(ids)).toEqual(new Set(results.map((r) => r.body.messageId)))
  const seqs = timeline.body.items.map((m: { seq: number }) => m.seq)
  expect(seqs).toEqual(Array.from({ length: seqs.length }, (_, i) => i + 1))
})

it('one room renamed and re-membered concurrently: no lost update; conflicts are retried or answered 409', async () => {
  const room = await server.request('POST', '/api/rooms', {
    token: owner.token,
    body: { name: 'Contended', visibility: 'public' },
  })
  const roomId = room.body.roomId
  const ops = [
    ...Array.from(
      { length: 10 },
      (_, i) => () => server.request('PATCH', `/api/rooms/${roomId}`, { token: owner.token, body: { description: `d${i}` } }),
    ),
    ...members.map(
      (m) => () => server.request('POST', `/api/rooms/${roomId}/members`, { token: m.token, body: { userId: m.userId } }),
    ),
    ...members.slice(0, 3).map((m) => async () => {
      await new Promise((r) => setTimeout(r, Math.random() * 20))
      return server.request('DELETE', `/api/rooms/${roomId}/members/${m.userId}`, { token: m.token })
    }),
  ]
  const results = await Promise.all(ops.map((op) => op()))
  for (const r of results) expect([200, 409]).toContain(r.status)
  const conflicts = results.filter((r) => r.status === 409)
  for (const r of conflicts) expect(r.body.code).toBe('CONCURRENCY_CONFLICT')

  // The read model equals the fold of what was acknowledged, in the store's order.
  const events = (await server.services.store.readStream(`room-${roomId}`)).map((e) => ({
    type: e.type,
    data: e.data as Record<string, string>,
  }))
  const members_ = new Set<string>([owner.userId])
  let description = ''
  for (const e of events) {
    if (e.type === 'room.member_added') members_.add(e.data.memberId!)
    if (e.type === 'room.member_removed') members_.delete(e.data.memberId!)
    if (e.type === 'room.updated' && e.data.description !== undefined) description = e.data.description
  }
  const last = Math.max(...results.filter((r) => r.status === 200).map((r) => r.body.position))
  const detail = await server.request('GET', `/api/rooms/${roomId}?consistentAfter=${last}`, { token: owner.token })
  expect(new Set(detail.body.members.map((m: { memberId: string }) => m.memberId))).toEqual(members_)
  expect(detail.body.description).toBe(description)
  const acknowledgedDescriptions = results.slice(0, 10).filter((r) => r.status === 200).length
  expect(events.filter((e) => e.type === 'room.updated').length).toBe(acknowledgedDescriptions)
})
