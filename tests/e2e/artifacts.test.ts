import { v7 as uuid } from 'uuid'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createArtifact } from '../../commands/artifacts.ts'
import type { CommandContext } from '../../commands/pipeline.ts'
import { ARTIFACT_CONTENT_MAX_BYTES } from '../../domain/artifacts.ts'
import { eventUpcasters } from '../../domain/schema-versions.ts'
import { join, signInAgent, signUp } from '../support/identity.ts'
import { startTestServer, type TestServer } from '../support/server.ts'

let server: TestServer
type Who = { token: string; userId: string }
let alice: Awaited<ReturnType<typeof signUp>>
let bob: Who
let carol: Who
let gus: Who
let robo: Who
let mallory: Awaited<ReturnType<typeof signUp>>
/** alice, bob, gus (a guest) and robo (an agent) are members; carol is not. */
let privateRoom: string
/** alice's alone: everyone but guests reads it. */
let lobby: string

const PATCH = `diff --git a/src/a.ts b/src/a.ts
--- a/src/a.ts
+++ b/src/a.ts
@@ -1,2 +1,2 @@
-export const a = 1
+export const a = 2
 export const b = 3
`

const req = (who: { token: string }, method: string, path: string, body?: unknown) =>
  server.request(method, path, { token: who.token, ...(body !== undefined ? { body } : {}) })

const expectStatus = (r: { status: number; body: unknown }, status: number) =>
  expect(r.status, JSON.stringify(r.body)).toBe(status)

async function createRoom(name: string, visibility: 'public' | 'private', members: string[]) {
  const created = await req(alice, 'POST', '/api/rooms', { name, visibility })
  expectStatus(created, 201)
  for (const userId of members) {
    const added = await req(alice, 'POST', `/api/rooms/${created.body.roomId}/members`, { userId })
    expectStatus(added, 200)
  }
  return created.body.roomId as string
}

async function addArtifact(who: { token: string }, body: Record<string, unknown>) {
  const r = await req(who, 'POST', '/api/artifacts', body)
  expectStatus(r, 201)
  return r.body as { artifactId: string; position: number }
}

const getArtifact = (who: { token: string }, id: string, query = '') => req(who, 'GET', `/api/artifacts/${id}${query}`)
const listIds = async (who: { token: string }, query: string) => {
  const r = await req(who, 'GET', `/api/artifacts?${query}`)
  expectStatus(r, 200)
  return (r.body.items as { id: string }[]).map((a) => a.id)
}

beforeAll(async () => {
  server = await startTestServer()
  alice = await signUp(server, { email: 'alice@artifacts.test', orgName: 'Artifacts Inc', username: 'alice' })
  bob = await join(server, alice.token, { email: 'bob@artifacts.test', role: 'member', username: 'bob' })
  carol = await join(server, alice.token, { email: 'carol@artifacts.test', role: 'member', username: 'carol' })
  gus = await join(server, alice.token, { email: 'gus@artifacts.test', role: 'guest', username: 'gus' })
  robo = await signInAgent(server, alice.token, { name: 'Robo', username: 'robo' })
  mallory = await signUp(server, { email: 'mallory@evil.test', orgName: 'Evil Artifacts', username: 'mallory' })
  privateRoom = await createRoom('Work', 'private', [bob.userId])
  // An agent joins as an agent (its user id is its agent id).
  expectStatus(await req(alice, 'POST', `/api/rooms/${privateRoom}/members`, { agentId: robo.userId }), 200)
  expectStatus(await req(alice, 'POST', `/api/rooms/${privateRoom}/members`, { userId: gus.userId }), 200)
  lobby = await createRoom('Lobby', 'public', [])
}, 120_000)
afterAll(async () => {
  await server?.close()
})

describe('artifacts in a room', () => {
  it('a member adds a patch; it reads back with its content, and lists without it', async () => {
    const { artifactId, position } = await addArtifact(bob, {
      kind: 'patch',
      title: ' Bump a ',
      roomId: privateRoom,
      content: PATCH,
    })
    const got = await getArtifact(alice, artifactId, `?consistentAfter=${position}`)
    expectStatus(got, 200)
    expect(got.body).toMatchObject({
      id: artifactId,
      kind: 'patch',
      title: 'Bump a',
      roomId: privateRoom,
      taskId: null,
      runId: null,
      version: 1,
      size: Buffer.byteLength(PATCH),
      content: PATCH,
      contentVersion: 1,
      createdBy: bob.userId,
      createdByType: 'user',
    })
    const list = await req(alice, 'GET', `/api/artifacts?roomId=${privateRoom}&consistentAfter=${position}`)
    expectStatus(list, 200)
    const item = list.body.items.find((a: { id: string }) => a.id === artifactId)
    expect(item).toMatchObject({ id: artifactId, kind: 'patch', size: Buffer.byteLength(PATCH) })
    expect(item).not.toHaveProperty('content')
  })

  it('an agent in the room adds a report from its run; a guest member adds a link', async () => {
    const runId = '01938f2e-0000-7000-8000-000000000001'
    const report = await addArtifact(robo, {
      kind: 'report',
      title: 'Findings',
      roomId: privateRoom,
      runId,
      content: '# All good',
    })
    const link = await addArtifact(gus, { kind: 'link', title: 'CI run', roomId: privateRoom, url: 'https://ci.example.com/7' })
    const got = await getArtifact(bob, report.artifactId, `?consistentAfter=${Math.max(report.position, link.position)}`)
    expect(got.body).toMatchObject({ createdBy: robo.userId, createdByType: 'agent', runId, content: '# All good' })
    expect((await getArtifact(bob, link.artifactId)).body).toMatchObject({
      kind: 'link',
      url: 'https://ci.example.com/7',
      content: null,
      size: null,
    })
  })

  it('a private room’s artifacts are not found outside it: no write, no read, not listed', async () => {
    const { artifactId, position } = await addArtifact(alice, {
      kind: 'report',
      title: 'Secret',
      roomId: privateRoom,
      content: 'x',
    })
    const refused = await req(carol, 'POST', '/api/artifacts', { kind: 'report', title: 'x', roomId: privateRoom, content: 'x' })
    expectStatus(refused, 404)
    expect(refused.body.code).toBe('ROOM_NOT_FOUND')
    expectStatus(await getArtifact(carol, artifactId, `?consistentAfter=${position}`), 404)
    expect(await listIds(carol, `consistentAfter=${position}`)).not.toContain(artifactId)
    expect(await listIds(carol, `roomId=${privateRoom}`)).toEqual([])
    // Nor can she change or delete it.
    expectStatus(await req(carol, 'PATCH', `/api/artifacts/${artifactId}`, { title: 'Mine' }), 404)
    expectStatus(await req(carol, 'DELETE', `/api/artifacts/${artifactId}`), 404)
  })

  it('a public room’s artifacts are read by the org, guests aside; writing there takes joining it', async () => {
    const { artifactId, position } = await addArtifact(alice, { kind: 'report', title: 'Notes', roomId: lobby, content: 'hello' })
    expectStatus(await getArtifact(carol, artifactId, `?consistentAfter=${position}`), 200)
    expect(await listIds(carol, `roomId=${lobby}`)).toContain(artifactId)
    expectStatus(await getArtifact(gus, artifactId), 404)
    const refused = await req(carol, 'POST', '/api/artifacts', { kind: 'report', title: 'x', roomId: lobby, content: 'x' })
    expectStatus(refused, 403)
    expect(refused.body.code).toBe('NOT_A_MEMBER')
    expectStatus(await req(carol, 'POST', `/api/rooms/${lobby}/members`, { userId: carol.userId }), 200)
    await addArtifact(carol, { kind: 'report', title: 'Mine', roomId: lobby, content: 'x' })
  })

  it('another tenant finds nothing: not the artifact, not the room, not in lists', async () => {
    const { artifactId, position } = await addArtifact(alice, {
      kind: 'report',
      title: 'Ours',
      roomId: privateRoom,
      content: 'x',
    })
    expectStatus(await getArtifact(mallory, artifactId, `?consistentAfter=${position}`), 404)
    expectStatus(await req(mallory, 'PATCH', `/api/artifacts/${artifactId}`, { title: 'Theirs' }), 404)
    expectStatus(await req(mallory, 'DELETE', `/api/artifacts/${artifactId}`), 404)
    expectStatus(
      await req(mallory, 'POST', '/api/artifacts', { kind: 'report', title: 'x', roomId: privateRoom, content: 'x' }),
      404,
    )
    expectStatus(
      await req(mallory, 'POST', '/api/artifacts', {
        kind: 'report',
        title: 'x',
        roomId: mallory.homeRoomId,
        content: 'x',
        id: artifactId,
      }),
      404,
    )
    expect(await listIds(mallory, `roomId=${privateRoom}&consistentAfter=${position}`)).toEqual([])
    expect(await listIds(mallory, '')).not.toContain(artifactId)
    expect((await getArtifact(alice, artifactId)).body.title).toBe('Ours')
  })

  it('anonymous callers are not signed in', async () => {
    expect((await server.request('GET', '/api/artifacts')).status).toBe(401)
    expect(
      (await server.request('POST', '/api/artifacts', { body: { kind: 'report', title: 'x', roomId: lobby, content: 'x' } }))
        .status,
    ).toBe(401)
  })

  it('an archived room takes no new artifacts', async () => {
    const room = await createRoom('Old', 'private', [])
    expectStatus(await req(alice, 'POST', `/api/rooms/${room}/archive`), 200)
    const r = await req(alice, 'POST', '/api/artifacts', { kind: 'report', title: 'x', roomId: room, content: 'x' })
    expectStatus(r, 422)
    expect(r.body.code).toBe('ROOM_ARCHIVED')
  })
})

describe('what an artifact may hold', () => {
  const invalid = async (body: Record<string, unknown>, path: string) => {
    const r = await req(alice, 'POST', '/api/artifacts', body)
    expectStatus(r, 400)
    expect(r.body.errors.map((e: { path: string }) => e.path)).toContain(path)
  }
  const refused = async (body: Record<string, unknown>, code: string) => {
    const r = await req(alice, 'POST', '/api/artifacts', body)
    expectStatus(r, 422)
    expect(r.body.code).toBe(code)
  }

  it('bad input is a 400 naming the field', async () => {
    await invalid({ kind: 'link', title: 'x', roomId: privateRoom, url: 'javascript:alert(1)' }, 'url')
    await invalid({ kind: 'link', title: 'x', roomId: privateRoom, url: 'ftp://example.com/a' }, 'url')
    await invalid({ kind: 'patch', title: 'x', roomId: privateRoom }, 'content')
    await invalid({ kind: 'file', title: 'x', roomId: privateRoom, fileId: 'nope' }, 'fileId')
    await invalid({ kind: 'report', title: 'x', content: 'x' }, 'roomId')
    await invalid({ kind: 'video', title: 'x', roomId: privateRoom }, 'kind')
    await invalid({ kind: 'report', title: '', roomId: privateRoom, content: 'x' }, 'title')
  })

  it('a patch that is no unified diff, blank content, a blank title are refused (422)', async () => {
    await refused({ kind: 'patch', title: 'x', roomId: privateRoom, content: 'change a to 2' }, 'ARTIFACT_PATCH_INVALID')
    await refused(
      { kind: 'patch', title: 'x', roomId: privateRoom, content: '--- a\n+++ b\n@@ -1,2 +1 @@\n-a\n' },
      'ARTIFACT_PATCH_INVALID',
    )
    await refused({ kind: 'report', title: 'x', roomId: privateRoom, content: '   ' }, 'ARTIFACT_CONTENT_EMPTY')
    await refused({ kind: 'report', title: '   ', roomId: privateRoom, content: 'x' }, 'ARTIFACT_TITLE_INVALID')
  })

  it('content is limited to 512 KiB: the limit fits, one byte more is refused', async () => {
    const fits = 'a'.repeat(ARTIFACT_CONTENT_MAX_BYTES)
    const { artifactId, position } = await addArtifact(alice, {
      kind: 'report',
      title: 'Big',
      roomId: privateRoom,
      content: fits,
    })
    expect((await getArtifact(alice, artifactId, `?consistentAfter=${position}`)).body.size).toBe(ARTIFACT_CONTENT_MAX_BYTES)
    await refused({ kind: 'report', title: 'Too big', roomId: privateRoom, content: `${fits}a` }, 'ARTIFACT_TOO_LARGE')
  })

  it('a retried create under the same id answers as the first time; another body under it is a conflict', async () => {
    const id = '01938f2e-0000-7000-8000-00000000a001'
    const body = { id, kind: 'report', title: 'Once', roomId: privateRoom, content: 'x' }
    const first = await addArtifact(alice, body)
    const again = await addArtifact(alice, body)
    expect(again).toEqual(first)
    const other = await req(alice, 'POST', '/api/artifacts', { ...body, title: 'Twice' })
    expectStatus(other, 409)
    expect(other.body.code).toBe('ARTIFACT_EXISTS')
  })
})

describe('changing and deleting', () => {
  it('new content is a new version; every version stays readable; a rename keeps the version', async () => {
    const { artifactId } = await addArtifact(bob, { kind: 'report', title: 'Draft', roomId: privateRoom, content: 'one' })
    const v2 = await req(bob, 'PATCH', `/api/artifacts/${artifactId}`, { content: 'two' })
    expectStatus(v2, 200)
    expect(v2.body).toMatchObject({ artifactId, version: 2 })
    const renamed = await req(bob, 'PATCH', `/api/artifacts/${artifactId}`, { title: 'Final' })
    expect(renamed.body.version).toBe(2)
    const now = await getArtifact(bob, artifactId, `?consistentAfter=${renamed.body.position}`)
    expect(now.body).toMatchObject({ title: 'Final', version: 2, content: 'two', contentVersion: 2 })
    expect((await getArtifact(bob, artifactId, '?version=1')).body).toMatchObject({
      content: 'one',
      contentVersion: 1,
      version: 2,
    })
    expectStatus(await getArtifact(bob, artifactId, '?version=3'), 404)
    const unchanged = await req(bob, 'PATCH', `/api/artifacts/${artifactId}`, { title: 'Final', content: 'two' })
    expect(unchanged.body).toEqual({ artifactId, version: 2, position: renamed.body.position })
    expectStatus(await req(bob, 'PATCH', `/api/artifacts/${artifactId}`, {}), 400)
  })

  it('its creator or an admin changes or deletes it; another member may not', async () => {
    const { artifactId } = await addArtifact(bob, { kind: 'report', title: 'Bob’s', roomId: privateRoom, content: 'x' })
    const other = await req(robo, 'PATCH', `/api/artifacts/${artifactId}`, { title: 'Robo’s' })
    expectStatus(other, 403)
    expectStatus(await req(robo, 'DELETE', `/api/artifacts/${artifactId}`), 403)
    expectStatus(await req(alice, 'PATCH', `/api/artifacts/${artifactId}`, { title: 'Moderated' }), 200)
    const deleted = await req(bob, 'DELETE', `/api/artifacts/${artifactId}`)
    expectStatus(deleted, 200)
    expectStatus(await getArtifact(bob, artifactId, `?consistentAfter=${deleted.body.position}`), 404)
    expect(await listIds(bob, `roomId=${privateRoom}`)).not.toContain(artifactId)
    // Deleting again changes nothing; changing it finds nothing.
    expect((await req(bob, 'DELETE', `/api/artifacts/${artifactId}`)).body.position).toBe(deleted.body.position)
    expectStatus(await req(bob, 'PATCH', `/api/artifacts/${artifactId}`, { title: 'Back' }), 404)
  })

  it('every event names the artifact, its room, task, kind and title (what realtime keys its changes by)', async () => {
    const { artifactId } = await addArtifact(bob, { kind: 'report', title: 'Evented', roomId: privateRoom, content: 'x' })
    await req(bob, 'PATCH', `/api/artifacts/${artifactId}`, { content: 'y' })
    await req(bob, 'DELETE', `/api/artifacts/${artifactId}`)
    const events = await server.services.store.readStream(`artifact-${artifactId}`)
    expect(events.map((e) => e.type)).toEqual(['artifact.created', 'artifact.updated', 'artifact.deleted'])
    for (const e of events) {
      expect(e.data).toMatchObject({ artifactId, roomId: privateRoom, taskId: null, kind: 'report', title: 'Evented' })
      expect(e.metadata).toMatchObject({ tenantId: alice.orgId, actor: { type: 'user', id: bob.userId } })
    }
  })
})

describe('lists', () => {
  it('are newest first, page by cursor, and filter by kind', async () => {
    const room = await createRoom('Paged', 'private', [])
    const ids: string[] = []
    let position = 0
    for (const n of [1, 2, 3, 4, 5]) {
      const kind = n % 2 ? 'report' : 'link'
      const r = await addArtifact(alice, {
        kind,
        title: `#${n}`,
        roomId: room,
        ...(kind === 'report' ? { content: `${n}` } : { url: `https://e.com/${n}` }),
      })
      ids.push(r.artifactId)
      position = r.position
    }
    const seen: string[] = []
    let cursor: string | null = null
    do {
      const page: { status: number; body: { items: { id: string }[]; nextCursor: string | null } } = await req(
        alice,
        'GET',
        `/api/artifacts?roomId=${room}&limit=2&consistentAfter=${position}${cursor ? `&cursor=${cursor}` : ''}`,
      )
      expectStatus(page, 200)
      expect(page.body.items.length).toBeLessThanOrEqual(2)
      seen.push(...page.body.items.map((a) => a.id))
      cursor = page.body.nextCursor
    } while (cursor)
    expect(seen).toEqual([...ids].reverse())
    expect(await listIds(alice, `roomId=${room}&kind=link`)).toEqual([ids[3], ids[1]])
    expectStatus(await req(alice, 'GET', '/api/artifacts?cursor=garbage'), 400)
  })
})

describe('artifacts of a task', () => {
  /** A task in the private room, assigned to carol (who reads it through the room until she leaves it). */
  let taskId: string
  beforeAll(async () => {
    expectStatus(await req(alice, 'POST', `/api/rooms/${privateRoom}/members`, { userId: carol.userId }), 200)
    const created = await req(alice, 'POST', '/api/tasks', {
      title: 'Ship it',
      roomId: privateRoom,
      assignee: { userId: carol.userId },
    })
    expectStatus(created, 201)
    taskId = created.body.taskId
    expectStatus(await req(alice, 'DELETE', `/api/rooms/${privateRoom}/members/${carol.userId}`), 200)
  })

  it('lives in the task’s room, lists by task, and is read by the task’s people outside the room', async () => {
    const mine = await addArtifact(carol, { kind: 'patch', title: 'Carol’s fix', taskId, content: PATCH })
    const theirs = await addArtifact(bob, { kind: 'report', title: 'Bob’s notes', taskId, roomId: privateRoom, content: 'x' })
    const room = await addArtifact(bob, { kind: 'report', title: 'Room only', roomId: privateRoom, content: 'x' })
    const after = `consistentAfter=${Math.max(mine.position, theirs.position, room.position)}`
    const got = await getArtifact(carol, mine.artifactId, `?${after}`)
    expect(got.body).toMatchObject({ roomId: privateRoom, taskId, content: PATCH })
    expect(await listIds(carol, `taskId=${taskId}&${after}`)).toEqual([theirs.artifactId, mine.artifactId])
    expect(await listIds(bob, `taskId=${taskId}`)).toEqual([theirs.artifactId, mine.artifactId])
    // The room's own artifacts stay the room's.
    expectStatus(await getArtifact(carol, room.artifactId), 404)
    expect(await listIds(carol, `roomId=${privateRoom}`)).toEqual([theirs.artifactId, mine.artifactId])
  })

  it('a task of another room than the one given, a task that does not exist, another tenant’s task are refused', async () => {
    const wrongRoom = await req(alice, 'POST', '/api/artifacts', {
      kind: 'report',
      title: 'x',
      taskId,
      roomId: lobby,
      content: 'x',
    })
    expectStatus(wrongRoom, 422)
    expect(wrongRoom.body.code).toBe('TASK_NOT_IN_ROOM')
    const missing = '01938f2e-0000-7000-8000-00000000dead'
    const nowhere = await req(alice, 'POST', '/api/artifacts', { kind: 'report', title: 'x', taskId: missing, content: 'x' })
    expectStatus(nowhere, 404)
    expect(nowhere.body.code).toBe('TASK_NOT_FOUND')
    expectStatus(await req(mallory, 'POST', '/api/artifacts', { kind: 'report', title: 'x', taskId, content: 'x' }), 404)
    expect(await listIds(mallory, `taskId=${taskId}`)).toEqual([])
  })

  it('someone neither in the room nor on the task finds no task', async () => {
    const dave = await join(server, alice.token, { email: 'dave@artifacts.test', role: 'member', username: 'dave' })
    const r = await req(dave, 'POST', '/api/artifacts', { kind: 'report', title: 'x', taskId, content: 'x' })
    expectStatus(r, 404)
    expect(r.body.code).toBe('TASK_NOT_FOUND')
  })

  it('once the task is deleted, its artifacts are its room’s alone', async () => {
    const { artifactId } = await addArtifact(carol, { kind: 'report', title: 'Left behind', taskId, content: 'x' })
    const deleted = await req(alice, 'DELETE', `/api/tasks/${taskId}`)
    expectStatus(deleted, 200)
    expectStatus(await getArtifact(carol, artifactId, `?consistentAfter=${deleted.body.position}`), 404)
    expectStatus(await getArtifact(bob, artifactId), 200)
    const late = await req(bob, 'POST', '/api/artifacts', { kind: 'report', title: 'x', taskId, content: 'x' })
    expectStatus(late, 404)
    expect(late.body.code).toBe('TASK_NOT_FOUND')
    // Its creator lost sight of it with the task: changing it is not found for her; an admin still moderates.
    expectStatus(await req(carol, 'PATCH', `/api/artifacts/${artifactId}`, { title: 'Mine' }), 404)
    expectStatus(await req(alice, 'DELETE', `/api/artifacts/${artifactId}`), 200)
  })
})

describe('artifacts from processors', () => {
  const processorContext = (tenantId: string): CommandContext => ({
    tenantId,
    actor: { type: 'system', id: 'vm-recorder' },
    correlationId: uuid(),
    causationId: uuid(),
    now: () => new Date(),
    newId: uuid,
  })
  const deps = () => ({ store: server.services.store, upcasters: eventUpcasters })

  it('createArtifact adds one as the platform, named by the processor, in any room of the tenant; a repeat is the first', async () => {
    const artifactId = uuid()
    const input = {
      artifactId,
      kind: 'link' as const,
      title: 'Browser recording',
      roomId: lobby,
      url: 'https://recordings.example.com/r/1',
      actor: { type: 'system' as const, userId: 'vm-recorder' },
    }
    const first = await createArtifact(deps(), processorContext(alice.orgId), input)
    expect(await createArtifact(deps(), processorContext(alice.orgId), input)).toEqual(first)
    const got = await getArtifact(carol, artifactId, `?consistentAfter=${first.position}`)
    expectStatus(got, 200)
    expect(got.body).toMatchObject({ createdBy: 'vm-recorder', createdByType: 'system', url: input.url })
    // Another tenant's room does not exist for a processor working for this one.
    await expect(createArtifact(deps(), processorContext(mallory.orgId), { ...input, artifactId: uuid() })).rejects.toMatchObject(
      {
        code: 'ROOM_NOT_FOUND',
      },
    )
  })
})
