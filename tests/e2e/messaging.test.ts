import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { join, signUp } from '../support/identity.ts'
import { startTestServer, type TestServer } from '../support/server.ts'

let server: TestServer
let alice: { token: string; userId: string; orgId: string }
let bob: { token: string; userId: string }
let carol: { token: string; userId: string }
let mallory: { token: string; userId: string; orgId: string }

beforeAll(async () => {
  server = await startTestServer({ REALTIME_HEARTBEAT_MS: '1500', REALTIME_QUEUE_TTL_MS: '3000' })
  alice = await signUp(server, { email: 'alice@acme.test', orgName: 'Acme Messaging', username: 'alice' })
  bob = await join(server, alice.token, { email: 'bob@acme.test', role: 'member', username: 'bob' })
  carol = await join(server, alice.token, { email: 'carol@acme.test', role: 'member', username: 'carol' })
  mallory = await signUp(server, { email: 'mallory@evil.test', orgName: 'Evil Corp', username: 'mallory' })
}, 60_000)
afterAll(async () => {
  await server?.close()
})

const as = (who: { token: string }) => ({ token: who.token })
type Poller = { queueId: string; lastEventId: string; position: number }

async function register(who: { token: string }, eventTypes?: string[]): Promise<Poller> {
  const r = await server.request('POST', '/realtime/register', { ...as(who), body: eventTypes ? { eventTypes } : {} })
  expect(r.status).toBe(200)
  return r.body
}

/** Long-polls until events of the wanted types arrive (skipping heartbeats), advancing the queue. */
async function next(who: { token: string }, q: Poller, want: (e: any) => boolean = () => true) {
  const deadline = Date.now() + 10_000
  const got: any[] = []
  while (Date.now() < deadline) {
    const r = await server.request('GET', `/realtime/events?queueId=${q.queueId}&lastEventId=${q.lastEventId}`, as(who))
    if (r.status !== 200) return { status: r.status, body: r.body, events: got }
    for (const e of r.body.events) {
      if (e.type === 'heartbeat') continue
      q.lastEventId = e.id
      got.push(e)
    }
    if (got.some(want)) return { status: 200, events: got }
  }
  return { status: 0, events: got }
}

describe('messaging over HTTP with realtime delivery', () => {
  let roomId: string

  it('a pending long-poll of one member returns the message another posts', async () => {
    const created = await server.request('POST', '/api/rooms', { ...as(alice), body: { name: 'Launch', visibility: 'private' } })
    expect(created.status).toBe(201)
    roomId = created.body.roomId
    const added = await server.request('POST', `/api/rooms/${roomId}/members`, { ...as(alice), body: { userId: bob.userId } })
    expect(added.status).toBe(200)
    const q = await register(bob)
    const pending = next(bob, q, (e) => e.type === 'message.created')
    await new Promise((r) => setTimeout(r, 200))
    const posted = await server.request('POST', `/api/rooms/${roomId}/messages`, { ...as(alice), body: { text: 'hello @bob' } })
    expect(posted.status).toBe(201)
    const got = await pending
    const msg = got.events.find((e) => e.type === 'message.created')
    expect(msg).toMatchObject({
      type: 'message.created',
      position: posted.body.position,
      data: { messageId: posted.body.messageId, text: 'hello @bob', roomId },
    })
    expect(msg.data.mentions).toEqual([{ userId: bob.userId, username: 'bob' }])
  })

  it('edit, react, delete and range delete arrive in order', async () => {
    const q = await register(bob, [
      'message.created',
      'message.updated',
      'message.deleted',
      'message.range_deleted',
      'message.reaction_changed',
    ])
    const m1 = await server.request('POST', `/api/rooms/${roomId}/messages`, { ...as(alice), body: { text: 'one' } })
    const m2 = await server.request('POST', `/api/rooms/${roomId}/messages`, { ...as(alice), body: { text: 'two' } })
    const m3 = await server.request('POST', `/api/rooms/${roomId}/messages`, { ...as(bob), body: { text: 'three' } })
    expect(
      (await server.request('PATCH', `/api/messages/${m1.body.messageId}`, { ...as(alice), body: { text: 'one, edited' } }))
        .status,
    ).toBe(200)
    expect((await server.request('PUT', `/api/messages/${m1.body.messageId}/reactions/tada`, as(bob))).status).toBe(200)
    expect((await server.request('DELETE', `/api/messages/${m1.body.messageId}`, as(alice))).status).toBe(200)
    const range = await server.request('POST', `/api/rooms/${roomId}/messages/delete-range`, {
      ...as(alice),
      body: { fromMessageId: m2.body.messageId },
    })
    expect(range.status).toBe(200)
    expect(range.body.deleted).toBe(2)
    const got = await next(bob, q, (e) => e.type === 'message.range_deleted')
    expect(got.events.map((e) => e.type)).toEqual([
      'message.created',
      'message.created',
      'message.created',
      'message.updated',
      'message.reaction_changed',
      'message.deleted',
      'message.range_deleted',
    ])
    expect(got.events.at(-1).data.messageIds).toEqual([m2.body.messageId, m3.body.messageId])
    const positions = got.events.map((e) => e.position)
    expect([...positions].sort((a, b) => a - b)).toEqual(positions)
    const timeline = await server.request('GET', `/api/rooms/${roomId}/messages?consistentAfter=${range.body.position}`, as(bob))
    expect(timeline.body.items.map((m: any) => m.text)).toEqual(['hello @bob'])
  })

  it('a user removed from a room stops receiving its events', async () => {
    const q = await register(bob)
    const removed = await server.request('DELETE', `/api/rooms/${roomId}/members/${bob.userId}`, as(alice))
    expect(removed.status).toBe(200)
    const sawRemoval = await next(bob, q, (e) => e.type === 'workspace.room_changed' && e.data.change === 'room.member_removed')
    expect(sawRemoval.status).toBe(200)
    const secret = await server.request('POST', `/api/rooms/${roomId}/messages`, {
      ...as(alice),
      body: { text: 'after bob left' },
    })
    const marker = await server.request('POST', '/api/rooms', {
      ...as(alice),
      body: { name: 'Public marker', visibility: 'public' },
    })
    const after = await next(bob, q, (e) => e.type === 'workspace.room_changed' && e.data.roomId === marker.body.roomId)
    expect(after.events.some((e) => e.type === 'message.created' && e.data.messageId === secret.body.messageId)).toBe(false)
    const read = await server.request('GET', `/api/rooms/${roomId}/messages?consistentAfter=${secret.body.position}`, as(bob))
    expect(read.status).toBe(404)
  })

  it('an expired queue answers BAD_EVENT_QUEUE_ID and re-registering works', async () => {
    const q = await register(carol)
    await new Promise((r) => setTimeout(r, 4_000))
    const stale = await server.request('GET', `/realtime/events?queueId=${q.queueId}&dontBlock=true`, as(carol))
    expect(stale.status).toBe(400)
    expect(stale.body.code).toBe('BAD_EVENT_QUEUE_ID')
    const fresh = await register(carol)
    const pub = await server.request('POST', '/api/rooms', { ...as(alice), body: { name: 'Everyone', visibility: 'public' } })
    const got = await next(carol, fresh, (e) => e.type === 'workspace.room_changed' && e.data.roomId === pub.body.roomId)
    expect(got.status).toBe(200)
  }, 20_000)

  it('a heartbeat ends an idle poll', async () => {
    const q = await register(carol, ['message.deleted'])
    const r = await server.request('GET', `/realtime/events?queueId=${q.queueId}&lastEventId=${q.lastEventId}`, as(carol))
    expect(r.body.events).toEqual([{ type: 'heartbeat' }])
  })

  it('another tenant sees nothing: 404 for rooms and messages, and no events', async () => {
    const q = await register(mallory)
    const posted = await server.request('POST', `/api/rooms/${roomId}/messages`, {
      ...as(alice),
      body: { text: 'for acme only' },
    })
    expect((await server.request('GET', `/api/rooms/${roomId}`, as(mallory))).status).toBe(404)
    expect((await server.request('GET', `/api/rooms/${roomId}/messages`, as(mallory))).status).toBe(404)
    expect((await server.request('GET', `/api/messages/${posted.body.messageId}`, as(mallory))).status).toBe(404)
    expect((await server.request('POST', `/api/rooms/${roomId}/messages`, { ...as(mallory), body: { text: 'hi' } })).status).toBe(
      404,
    )
    expect(
      (await server.request('PATCH', `/api/messages/${posted.body.messageId}`, { ...as(mallory), body: { text: 'x' } })).status,
    ).toBe(404)
    expect((await server.request('DELETE', `/api/messages/${posted.body.messageId}`, as(mallory))).status).toBe(404)
    // Mallory owns her org: her admin powers must not reach another tenant's rooms.
    expect((await server.request('PATCH', `/api/rooms/${roomId}`, { ...as(mallory), body: { name: 'pwned' } })).status).toBe(404)
    expect(
      (await server.request('POST', `/api/rooms/${roomId}/members`, { ...as(mallory), body: { userId: mallory.userId } })).status,
    ).toBe(404)
    expect((await server.request('POST', `/api/rooms/${roomId}/archive`, as(mallory))).status).toBe(404)
    expect((await server.request('DELETE', `/api/rooms/${roomId}/members/${bob.userId}`, as(mallory))).status).toBe(404)
    expect((await server.request('PUT', `/api/messages/${posted.body.messageId}/reactions/tada`, as(mallory))).status).toBe(404)
    expect((await server.request('PUT', `/api/rooms/${roomId}/draft`, { ...as(mallory), body: { text: 'x' } })).status).toBe(404)
    expect((await server.request('POST', '/api/dms', { ...as(mallory), body: { userId: alice.userId } })).status).toBe(404)
    const search = await server.request('GET', `/api/search/messages?q=acme&consistentAfter=${posted.body.position}`, as(mallory))
    expect(search.body.items).toEqual([])
    const polled = await server.request('GET', `/realtime/events?queueId=${q.queueId}&dontBlock=true`, as(mallory))
    expect(polled.body.events.filter((e: any) => e.type !== 'heartbeat')).toEqual([])
  })
})

describe('rooms, DMs, threads, drafts, unread counts and search', () => {
  it('a DM is created once, whoever opens it', async () => {
    const a = await server.request('POST', '/api/dms', { ...as(alice), body: { userId: carol.userId } })
    const b = await server.request('POST', '/api/dms', { ...as(carol), body: { userId: alice.userId } })
    expect(a.status).toBe(200)
    expect(a.body.created).toBe(true)
    expect(b.body).toMatchObject({ roomId: a.body.roomId, created: false })
    expect((await server.request('GET', `/api/rooms/${a.body.roomId}`, as(bob))).status).toBe(404)
  })

  it('threads, unread and mention counts, read marks, drafts, edit history and search', async () => {
    const room = await server.request('POST', '/api/rooms', { ...as(alice), body: { name: 'Threads', visibility: 'public' } })
    const roomId = room.body.roomId
    await server.request('POST', `/api/rooms/${roomId}/members`, { ...as(carol), body: { userId: carol.userId } })
    const root = await server.request('POST', `/api/rooms/${roomId}/messages`, {
      ...as(alice),
      body: { text: 'ship the zeppelin @carol' },
    })
    const reply = await server.request('POST', `/api/rooms/${roomId}/messages`, {
      ...as(carol),
      body: { text: 'on it', threadRootId: root.body.messageId },
    })
    expect(reply.status).toBe(201)
    await server.request('PATCH', `/api/messages/${root.body.messageId}`, {
      ...as(alice),
      body: { text: 'ship the airship @carol' },
    })
    const other = await server.request('POST', `/api/rooms/${roomId}/messages`, { ...as(alice), body: { text: 'second' } })
    const draft = await server.request('PUT', `/api/rooms/${roomId}/draft`, { ...as(carol), body: { text: 'half-written' } })
    expect(draft.status).toBe(200)

    // A draft appends nothing (its position is the room's): the counts are read after the last post.
    const detail = await server.request('GET', `/api/rooms/${roomId}?consistentAfter=${other.body.position}`, as(carol))
    expect(detail.body).toMatchObject({ unreadCount: 2, mentionCount: 1, draft: 'half-written', isMember: true })
    const read = await server.request('POST', `/api/rooms/${roomId}/read`, {
      ...as(carol),
      body: { messageId: other.body.messageId },
    })
    const after = await server.request('GET', `/api/rooms/${roomId}?consistentAfter=${read.body.position}`, as(carol))
    expect(after.body).toMatchObject({ unreadCount: 0, mentionCount: 0, lastReadMessageId: other.body.messageId })

    const top = await server.request('GET', `/api/rooms/${roomId}/messages`, as(carol))
    expect(top.body.items.map((m: any) => m.text)).toEqual(['ship the airship @carol', 'second'])
    expect(top.body.items[0].replyCount).toBe(1)
    const thread = await server.request('GET', `/api/rooms/${roomId}/messages?threadRootId=${root.body.messageId}`, as(carol))
    expect(thread.body.items.map((m: any) => m.text)).toEqual(['ship the airship @carol', 'on it'])
    const msg = await server.request('GET', `/api/messages/${root.body.messageId}`, as(carol))
    expect(msg.body.edits).toEqual([expect.objectContaining({ version: 1, text: 'ship the zeppelin @carol' })])

    const found = await server.request('GET', '/api/search/messages?q=airship', as(bob))
    expect(found.body.items.map((m: any) => m.id)).toEqual([root.body.messageId])
    const gone = await server.request('GET', '/api/search/messages?q=zeppelin', as(bob))
    expect(gone.body.items).toEqual([])
  })

  it('paginates a timeline both ways and around one message', async () => {
    const room = await server.request('POST', '/api/rooms', { ...as(alice), body: { name: 'Long', visibility: 'private' } })
    const ids: string[] = []
    let position = 0
    for (let i = 0; i < 12; i++) {
      const r = await server.request('POST', `/api/rooms/${room.body.roomId}/messages`, { ...as(alice), body: { text: `m${i}` } })
      ids.push(r.body.messageId)
      position = r.body.position
    }
    const base = `/api/rooms/${room.body.roomId}/messages`
    const latest = await server.request('GET', `${base}?limit=5&consistentAfter=${position}`, as(alice))
    expect(latest.body.items.map((m: any) => m.text)).toEqual(['m7', 'm8', 'm9', 'm10', 'm11'])
    expect(latest.body.hasBefore).toBe(true)
    const older = await server.request('GET', `${base}?limit=5&before=${ids[7]}`, as(alice))
    expect(older.body.items.map((m: any) => m.text)).toEqual(['m2', 'm3', 'm4', 'm5', 'm6'])
    const newer = await server.request('GET', `${base}?limit=3&after=${ids[2]}`, as(alice))
    expect(newer.body.items.map((m: any) => m.text)).toEqual(['m3', 'm4', 'm5'])
    expect(newer.body.hasAfter).toBe(true)
    const around = await server.request('GET', `${base}?limit=4&around=${ids[5]}`, as(alice))
    expect(around.body.items.map((m: any) => m.text)).toEqual(['m4', 'm5', 'm6', 'm7'])
  })

  it('nextCursor pages a timeline both ways and search results, visiting each message once, in order', async () => {
    const room = await server.request('POST', '/api/rooms', { ...as(alice), body: { name: 'Cursors', visibility: 'private' } })
    const roomId = room.body.roomId
    const ids: string[] = []
    for (let i = 0; i < 23; i++) {
      const r = await server.request('POST', `/api/rooms/${roomId}/messages`, {
        ...as(alice),
        body: { text: `walk ${i} quokka` },
      })
      expect(r.status).toBe(201)
      ids.push(r.body.messageId)
    }
    // A reply (not on the top-level timeline) and a deleted message (on no page).
    const reply = await server.request('POST', `/api/rooms/${roomId}/messages`, {
      ...as(alice),
      body: { text: 'reply quokka', threadRootId: ids[3] },
    })
    const deleted = await server.request('DELETE', `/api/messages/${ids[10]}`, as(alice))
    const visible = ids.filter((_, i) => i !== 10)
    const base = `/api/rooms/${roomId}/messages`

    type Page = { items: { id: string }[]; nextCursor: string | null; hasBefore: boolean; hasAfter: boolean }
    const walk = async (first: string, next: (cursor: string) => string) => {
      const pages: Page[] = []
      let r = await server.request('GET', first, as(alice))
      while (true) {
        expect(r.status, JSON.stringify(r.body)).toBe(200)
        pages.push(r.body)
        if (r.body.nextCursor === null) return pages
        expect(pages.length).toBeLessThan(20)
        r = await server.request('GET', next(r.body.nextCursor), as(alice))
      }
    }

    // Back from the latest page: pages of 5, each oldest first, the last one with no cursor.
    const back = await walk(`${base}?limit=5&consistentAfter=${deleted.body.position}`, (c) => `${base}?limit=5&cursor=${c}`)
    expect(back.map((p) => p.items.length)).toEqual([5, 5, 5, 5, 2])
    expect(back.flatMap((p) => p.items.map((m) => m.id)).length).toBe(visible.length)
    expect(back.toReversed().flatMap((p) => p.items.map((m) => m.id))).toEqual(visible)
    expect(back.map((p) => [p.hasBefore, p.hasAfter])).toEqual([
      [true, false],
      [true, true],
      [true, true],
      [true, true],
      [false, true],
    ])

    // Forward from the first message.
    const forward = await walk(`${base}?limit=4&after=${ids[0]}`, (c) => `${base}?limit=4&cursor=${c}`)
    expect(forward.flatMap((p) => p.items.map((m) => m.id))).toEqual(visible.slice(1))
    expect(forward.at(-1)!.hasAfter).toBe(false)
    // Around one message, nextCursor reads on.
    const around = await walk(`${base}?limit=4&around=${ids[18]}`, (c) => `${base}?limit=4&cursor=${c}`)
    expect(around.flatMap((p) => p.items.map((m) => m.id))).toEqual(visible.slice(visible.indexOf(ids[17]!)))

    // Search: newest first, 4 at a time, then nothing more.
    const found = await walk(
      `/api/search/messages?q=quokka&roomId=${roomId}&limit=4`,
      (c) => `/api/search/messages?q=quokka&roomId=${roomId}&limit=4&cursor=${c}`,
    )
    expect(found.map((p) => p.items.length)).toEqual([4, 4, 4, 4, 4, 3])
    expect(found.flatMap((p) => p.items.map((m) => m.id))).toEqual([reply.body.messageId, ...visible.toReversed()])

    // Cursors are opaque and bound to their timeline: anything else is the client's 400.
    const threadCursor = back[0]!.nextCursor
    const other = await server.request('POST', '/api/rooms', { ...as(alice), body: { name: 'Other', visibility: 'private' } })
    for (const path of [
      `${base}?cursor=not-a-cursor`,
      `${base}?cursor=${Buffer.from('["sideways",3,"x",""]').toString('base64url')}`,
      `${base}?cursor=${threadCursor}&before=${ids[5]}`,
      `${base}?cursor=${threadCursor}&threadRootId=${ids[3]}`,
      `/api/rooms/${other.body.roomId}/messages?cursor=${threadCursor}`,
      `/api/search/messages?q=quokka&cursor=${Buffer.from('["12"]').toString('base64url')}`,
      `/api/search/messages?q=quokka&cursor=${threadCursor}`,
    ]) {
      const r = await server.request('GET', path, as(alice))
      expect({ path, status: r.status, type: r.headers.get('content-type') }).toEqual({
        path,
        status: 400,
        type: 'application/problem+json',
      })
    }
  })

  it('archived rooms refuse posts with 422; non-members cannot post in private rooms', async () => {
    const room = await server.request('POST', '/api/rooms', { ...as(alice), body: { name: 'Old', visibility: 'private' } })
    expect(
      (await server.request('POST', `/api/rooms/${room.body.roomId}/messages`, { ...as(bob), body: { text: 'x' } })).status,
    ).toBe(404)
    expect((await server.request('POST', `/api/rooms/${room.body.roomId}/archive`, as(alice))).status).toBe(200)
    const refused = await server.request('POST', `/api/rooms/${room.body.roomId}/messages`, { ...as(alice), body: { text: 'x' } })
    expect(refused.status).toBe(422)
    expect(refused.body.code).toBe('ROOM_ARCHIVED')
  })
})

describe('long-poll hygiene', () => {
  it('a client that disconnects releases its poll at once', async () => {
    const q = await register(carol)
    const controller = new AbortController()
    const pending = fetch(`${server.url}/realtime/events?queueId=${q.queueId}&lastEventId=${q.lastEventId}`, {
      headers: { authorization: `Bearer ${carol.token}` },
      signal: controller.signal,
    }).catch(() => null)
    const deadline = Date.now() + 2_000
    while (server.services.gateway.heldPolls === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10))
    expect(server.services.gateway.heldPolls).toBe(1)
    controller.abort()
    await pending
    const released = Date.now() + 1_000
    while (server.services.gateway.heldPolls > 0 && Date.now() < released) await new Promise((r) => setTimeout(r, 10))
    expect(server.services.gateway.heldPolls).toBe(0)
  })
})
