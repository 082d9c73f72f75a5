import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { join, signUp } from '../support/identity.ts'
import { startTestServer, type TestServer } from '../support/server.ts'

let server: TestServer
let alice: Awaited<ReturnType<typeof signUp>>
let bob: Awaited<ReturnType<typeof join>>
let carol: Awaited<ReturnType<typeof join>>
let mallory: Awaited<ReturnType<typeof signUp>>
let roomId: string
let taskId: string

const post = (token: string, path: string, body: unknown) => server.request('POST', path, { token, body })
const get = (token: string, path: string, consistentAfter?: number) =>
  server.request(
    'GET',
    consistentAfter === undefined ? path : `${path}${path.includes('?') ? '&' : '?'}consistentAfter=${consistentAfter}`,
    {
      token,
    },
  )

beforeAll(async () => {
  server = await startTestServer()
  alice = await signUp(server, { email: 'alice@taskchat.test', orgName: 'Task Chat', username: 'alice' })
  bob = await join(server, alice.token, { email: 'bob@taskchat.test', role: 'member', username: 'bob' })
  carol = await join(server, alice.token, { email: 'carol@taskchat.test', role: 'member', username: 'carol' })
  mallory = await signUp(server, { email: 'mallory@evil-taskchat.test', orgName: 'Evil Task Chat', username: 'mallory' })
  const room = await post(alice.token, '/api/rooms', { name: 'Build', visibility: 'private' })
  expect(room.status).toBe(201)
  roomId = room.body.roomId
  expect((await post(alice.token, `/api/rooms/${roomId}/members`, { userId: bob.userId })).status).toBe(200)
  const task = await post(alice.token, '/api/tasks', { title: 'Fix the flaky test', roomId })
  expect(task.status).toBe(201)
  taskId = task.body.taskId
})

afterAll(async () => {
  await server?.close()
})

describe('a task’s conversation', () => {
  it('is a timeline of its own, in the task’s room, left out of the room’s timeline', async () => {
    const inRoom = await post(alice.token, `/api/rooms/${roomId}/messages`, { text: 'room chatter' })
    expect(inRoom.status).toBe(201)
    const texts = ['first on the task', 'second on the task', 'third on the task']
    let last = 0
    const ids: string[] = []
    for (const [i, text] of texts.entries()) {
      const r = await post(i % 2 ? bob.token : alice.token, `/api/tasks/${taskId}/messages`, { text })
      expect(r.status, JSON.stringify(r.body)).toBe(201)
      expect(r.body.taskId).toBe(taskId)
      ids.push(r.body.messageId)
      last = r.body.position
    }
    const timeline = await get(bob.token, `/api/tasks/${taskId}/messages`, last)
    expect(timeline.status).toBe(200)
    expect(timeline.body.items.map((m: { text: string }) => m.text)).toEqual(texts)
    expect(timeline.body.items.every((m: { taskId: string; roomId: string }) => m.taskId === taskId && m.roomId === roomId)).toBe(
      true,
    )
    const room = await get(bob.token, `/api/rooms/${roomId}/messages`, last)
    expect(room.body.items.map((m: { text: string }) => m.text)).toEqual(['room chatter'])
    expect(room.body.items[0].taskId).toBeNull()
    // One of its messages is read like any other.
    const one = await get(bob.token, `/api/messages/${ids[1]}`, last)
    expect(one.body).toMatchObject({ id: ids[1], taskId, text: 'second on the task' })
  })

  it('pages both ways and around one message, with cursors bound to the task', async () => {
    let last = 0
    const task = await post(alice.token, '/api/tasks', { title: 'Paging', roomId })
    const paged = task.body.taskId as string
    const ids: string[] = []
    for (let i = 0; i < 7; i++) {
      const r = await post(alice.token, `/api/tasks/${paged}/messages`, { text: `m${i}` })
      ids.push(r.body.messageId)
      last = r.body.position
    }
    const latest = await get(alice.token, `/api/tasks/${paged}/messages?limit=3`, last)
    expect(latest.body.items.map((m: { text: string }) => m.text)).toEqual(['m4', 'm5', 'm6'])
    expect(latest.body.hasBefore).toBe(true)
    const older = await get(alice.token, `/api/tasks/${paged}/messages?limit=3&cursor=${latest.body.nextCursor}`)
    expect(older.body.items.map((m: { text: string }) => m.text)).toEqual(['m1', 'm2', 'm3'])
    const after = await get(alice.token, `/api/tasks/${paged}/messages?limit=2&after=${ids[1]}`)
    expect(after.body.items.map((m: { text: string }) => m.text)).toEqual(['m2', 'm3'])
    const around = await get(alice.token, `/api/tasks/${paged}/messages?limit=3&around=${ids[3]}`)
    expect(around.body.items.map((m: { text: string }) => m.text)).toEqual(['m2', 'm3', 'm4'])
    // A cursor of this task continues neither another task nor the room.
    expect((await get(alice.token, `/api/tasks/${taskId}/messages?cursor=${latest.body.nextCursor}`)).status).toBe(400)
    expect((await get(alice.token, `/api/rooms/${roomId}/messages?cursor=${latest.body.nextCursor}`)).status).toBe(400)
    // An anchor outside the task is not one of its messages.
    const roomMessage = await post(alice.token, `/api/rooms/${roomId}/messages`, { text: 'elsewhere' })
    expect(
      (await get(alice.token, `/api/tasks/${paged}/messages?before=${roomMessage.body.messageId}`, roomMessage.body.position))
        .status,
    ).toBe(404)
  })

  it('threads stay within the conversation they started in', async () => {
    const root = await post(alice.token, `/api/tasks/${taskId}/messages`, { text: 'thread root on the task' })
    const reply = await post(bob.token, `/api/tasks/${taskId}/messages`, { text: 'a reply', threadRootId: root.body.messageId })
    expect(reply.status).toBe(201)
    const thread = await get(
      alice.token,
      `/api/tasks/${taskId}/messages?threadRootId=${root.body.messageId}`,
      reply.body.position,
    )
    expect(thread.body.items.map((m: { text: string }) => m.text)).toEqual(['thread root on the task', 'a reply'])
    const main = await get(alice.token, `/api/tasks/${taskId}/messages`, reply.body.position)
    expect(main.body.items.map((m: { text: string }) => m.text)).not.toContain('a reply')
    // A reply in the room to a task message, or on the task to a room message, is refused.
    const roomRoot = await post(alice.token, `/api/rooms/${roomId}/messages`, { text: 'room root' })
    const crossed = await post(alice.token, `/api/tasks/${taskId}/messages`, { text: 'x', threadRootId: roomRoot.body.messageId })
    expect(crossed.status).toBe(422)
    expect(crossed.body.code).toBe('THREAD_ROOT_INVALID')
    const crossedBack = await post(alice.token, `/api/rooms/${roomId}/messages`, { text: 'x', threadRootId: root.body.messageId })
    expect(crossedBack.status).toBe(422)
  })

  it('is delivered live as message.created with its taskId, to the room’s readers', async () => {
    const q = (await post(bob.token, '/realtime/register', {})).body as { queueId: string; lastEventId: string }
    const m = await post(alice.token, `/api/tasks/${taskId}/messages`, { text: 'live on the task' })
    const deadline = Date.now() + 15_000
    let created: { type: string; data: Record<string, unknown> } | undefined
    while (!created && Date.now() < deadline) {
      const r = await get(bob.token, `/realtime/events?queueId=${q.queueId}&lastEventId=${q.lastEventId}&dontBlock=true`)
      for (const e of r.body.events) {
        if (e.id) q.lastEventId = e.id
        if (e.type === 'message.created' && e.data.messageId === m.body.messageId) created = e
      }
      if (!created) await new Promise((resolve) => setTimeout(resolve, 50))
    }
    expect(created?.data).toMatchObject({ messageId: m.body.messageId, roomId, taskId, text: 'live on the task' })
  })

  it('is the room’s to read and write: a non-member of a private room neither reads nor posts', async () => {
    const r = await post(carol.token, `/api/tasks/${taskId}/messages`, { text: 'let me in' })
    expect(r.status).toBe(404)
    expect((await get(carol.token, `/api/tasks/${taskId}/messages`)).status).toBe(404)
  })

  it('edits, reactions and deletes work on task messages as on any', async () => {
    const m = await post(bob.token, `/api/tasks/${taskId}/messages`, { text: 'typo' })
    const edited = await server.request('PATCH', `/api/messages/${m.body.messageId}`, {
      token: bob.token,
      body: { text: 'fixed' },
    })
    expect(edited.status).toBe(200)
    const reacted = await server.request('PUT', `/api/messages/${m.body.messageId}/reactions/thumbsup`, { token: alice.token })
    expect(reacted.status).toBe(200)
    const one = await get(alice.token, `/api/messages/${m.body.messageId}`, reacted.body.position)
    expect(one.body).toMatchObject({ text: 'fixed', taskId, reactions: { thumbsup: [alice.userId] } })
    const deleted = await server.request('DELETE', `/api/messages/${m.body.messageId}`, { token: bob.token })
    const after = await get(alice.token, `/api/tasks/${taskId}/messages`, deleted.body.position)
    expect(after.body.items.map((x: { id: string }) => x.id)).not.toContain(m.body.messageId)
  })

  it('a deleted or unknown task takes no message, and another org’s task is not found', async () => {
    const doomed = await post(alice.token, '/api/tasks', { title: 'Doomed', roomId })
    const deleted = await server.request('DELETE', `/api/tasks/${doomed.body.taskId}`, { token: alice.token })
    expect(deleted.status, JSON.stringify(deleted.body)).toBe(200)
    const late = await post(alice.token, `/api/tasks/${doomed.body.taskId}/messages`, { text: 'too late' })
    expect(late.status).toBe(404)
    expect(late.body.code).toBe('TASK_NOT_FOUND')
    expect((await get(alice.token, `/api/tasks/${doomed.body.taskId}/messages`, deleted.body.position)).status).toBe(404)
    const unknown = '0190f5d2-7a3c-7b8e-9a1b-2c3d4e5f6a7b'
    expect((await post(alice.token, `/api/tasks/${unknown}/messages`, { text: 'hello?' })).status).toBe(404)
    // Mallory's org: Alice's task is not there for her, and hers is not there for Alice.
    expect((await post(mallory.token, `/api/tasks/${taskId}/messages`, { text: 'hi' })).status).toBe(404)
    expect((await get(mallory.token, `/api/tasks/${taskId}/messages`)).status).toBe(404)
    const theirs = await post(mallory.token, '/api/tasks', { title: 'Evil plan' })
    expect(theirs.status, JSON.stringify(theirs.body)).toBe(201)
    expect((await post(alice.token, `/api/tasks/${theirs.body.taskId}/messages`, { text: 'hi' })).status).toBe(404)
    expect((await get(alice.token, `/api/tasks/${theirs.body.taskId}/messages`, theirs.body.position)).status).toBe(404)
  })

  it('bad input is a 400 naming the field', async () => {
    const r = await post(alice.token, `/api/tasks/${taskId}/messages`, { text: '' })
    expect(r.status).toBe(400)
    expect(JSON.stringify(r.body.errors)).toContain('text')
    expect((await post(alice.token, '/api/tasks/not-a-uuid/messages', { text: 'x' })).status).toBe(400)
    expect((await get(alice.token, `/api/tasks/${taskId}/messages?before=x`)).status).toBe(400)
  })
})
