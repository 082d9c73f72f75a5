import { describe, expect, it } from 'vitest'
import {
  ARTIFACT_CONTENT_MAX_BYTES,
  type ArtifactActor,
  type ArtifactCommand,
  type ArtifactEvent,
  type ArtifactPayload,
  artifact,
  isUnifiedDiff,
} from '../../domain/artifacts.ts'
import { fold } from '../../domain/decider.ts'
import { type RoomEvent, room } from '../../domain/rooms.ts'
import { type TaskEvent, task } from '../../domain/tasks.ts'
import { spec } from './spec.ts'

const at = '2026-12-02T10:00:00.000Z'
const later = '2026-12-02T11:00:00.000Z'
const artifactId = 'artifact-1'
const roomId = 'room-1'
const taskId = 'task-1'

const alice: ArtifactActor = { type: 'user', userId: 'alice', role: 'member' }
const bob: ArtifactActor = { type: 'user', userId: 'bob', role: 'member' }
const carol: ArtifactActor = { type: 'user', userId: 'carol', role: 'member' }
const admin: ArtifactActor = { type: 'user', userId: 'adam', role: 'admin' }
const guest: ArtifactActor = { type: 'user', userId: 'gus', role: 'guest' }
const agent: ArtifactActor = { type: 'agent', userId: 'robo', role: 'member' }
const processor: ArtifactActor = { type: 'system', userId: 'vm-recorder' }

const roomCreated = (visibility: 'public' | 'private' = 'private', members = ['alice', 'bob', 'robo', 'gus']): RoomEvent => ({
  type: 'room.created',
  data: {
    roomId,
    name: 'Work',
    description: '',
    spaceId: null,
    visibility,
    kind: 'room',
    createdBy: 'alice',
    members: members.map((memberId) => ({ memberId, memberType: memberId === 'robo' ? 'agent' : 'user' })),
    at,
  },
})
const roomOf = (...events: RoomEvent[]) => fold(room, events.length ? events : [roomCreated()])
const archived: RoomEvent = { type: 'room.archived', data: { roomId, archivedBy: 'alice', at } }

const taskCreated = (over: Partial<Extract<TaskEvent, { type: 'task.created' }>['data']> = {}): TaskEvent => ({
  type: 'task.created',
  data: {
    taskId,
    title: 'Fix it',
    description: '',
    roomId,
    parentId: null,
    reporterId: 'alice',
    assignee: null,
    reviewGates: { plan: false, result: false },
    at,
    ...over,
  },
})
const taskOf = (...events: TaskEvent[]) => ({ taskId, state: fold(task, events) })

const PATCH = `diff --git a/a.txt b/a.txt
index 1111111..2222222 100644
--- a/a.txt
+++ b/a.txt
@@ -1,3 +1,3 @@
 one
-two
+deux
 three
`

const create = (over: Partial<Extract<ArtifactCommand, { type: 'create' }>> = {}): ArtifactCommand => ({
  type: 'create',
  artifactId,
  title: 'The fix',
  payload: { kind: 'patch', content: PATCH },
  roomId,
  task: null,
  runId: null,
  room: roomOf(),
  actor: alice,
  at,
  ...over,
})

const created = (
  payload: ArtifactPayload = { kind: 'patch', content: PATCH },
  over: Partial<Extract<ArtifactEvent, { type: 'artifact.created' }>['data']> = {},
): ArtifactEvent => ({
  type: 'artifact.created',
  data: {
    artifactId,
    roomId,
    taskId: null,
    kind: payload.kind,
    title: 'The fix',
    runId: null,
    content: 'content' in payload ? payload.content : null,
    fileId: 'fileId' in payload ? payload.fileId : null,
    url: 'url' in payload ? payload.url : null,
    createdBy: 'alice',
    createdByType: 'user',
    at,
    ...over,
  },
})

const REPORT = '# Findings\n\nAll good.'
const report = created({ kind: 'report', content: REPORT })

const update = (
  actor: ArtifactActor,
  change: { title?: string; content?: string },
  place = { room: roomOf(), task: null },
): ArtifactCommand => ({ type: 'update', artifactId, ...change, ...place, actor, at: later })
const remove = (actor: ArtifactActor, place = { room: roomOf(), task: null }): ArtifactCommand => ({
  type: 'delete',
  artifactId,
  ...place,
  actor,
  at: later,
})

describe('artifacts: creating', () => {
  const rules = spec(artifact)

  it('a member of the room adds a patch, a report, a file or a link, its title trimmed', () => {
    rules
      .given([])
      .when(create({ title: '  The fix  ' }))
      .then([created()])
    rules
      .given([])
      .when(create({ payload: { kind: 'report', content: REPORT } }))
      .then([report])
    rules
      .given([])
      .when(create({ payload: { kind: 'file', fileId: 'file-1' } }))
      .then([created({ kind: 'file', fileId: 'file-1' })])
    rules
      .given([])
      .when(create({ payload: { kind: 'link', url: 'https://ci.example.com/runs/7' } }))
      .then([created({ kind: 'link', url: 'https://ci.example.com/runs/7' })])
  })

  it('an agent member records the run that produced it; a processor of the platform needs no membership', () => {
    rules
      .given([])
      .when(create({ actor: agent, runId: 'run-9' }))
      .then([created(undefined, { createdBy: 'robo', createdByType: 'agent', runId: 'run-9' })])
    rules
      .given([])
      .when(create({ actor: processor, room: roomOf(roomCreated('private', ['alice'])) }))
      .then([created(undefined, { createdBy: 'vm-recorder', createdByType: 'system' })])
  })

  it('is created once', () => rules.given([created()]).when(create()).thenRefused('ARTIFACT_EXISTS', 'conflict'))

  it('needs a room or a task', () =>
    rules
      .given([])
      .when(create({ roomId: null }))
      .thenRefused('ARTIFACT_TARGET_MISSING'))

  it('a room that does not exist (or is another tenant’s: read as empty) is not found', () =>
    rules
      .given([])
      .when(create({ room: room.initialState }))
      .thenRefused('ROOM_NOT_FOUND', 'not_found'))

  it('a private room is not found for those outside it, admins included', () => {
    rules
      .given([])
      .when(create({ actor: carol }))
      .thenRefused('ROOM_NOT_FOUND', 'not_found')
    rules
      .given([])
      .when(create({ actor: admin }))
      .thenRefused('ROOM_NOT_FOUND', 'not_found')
  })

  it('writing takes membership: a reader of a public room joins it first; a guest member may', () => {
    const lobby = roomOf(roomCreated('public', ['alice', 'gus']))
    rules
      .given([])
      .when(create({ actor: carol, room: lobby }))
      .thenRefused('NOT_A_MEMBER', 'forbidden')
    rules
      .given([])
      .when(create({ actor: admin, room: lobby }))
      .thenRefused('NOT_A_MEMBER', 'forbidden')
    rules
      .given([])
      .when(create({ actor: guest, room: lobby }))
      .then([created(undefined, { createdBy: 'gus' })])
    // A guest outside even a public room cannot read it.
    rules
      .given([])
      .when(create({ actor: guest, room: roomOf(roomCreated('public', ['alice'])) }))
      .thenRefused('ROOM_NOT_FOUND', 'not_found')
  })

  it('an archived room takes no new artifacts, not even from the platform', () => {
    rules
      .given([])
      .when(create({ room: roomOf(roomCreated(), archived) }))
      .thenRefused('ROOM_ARCHIVED')
    rules
      .given([])
      .when(create({ actor: processor, room: roomOf(roomCreated(), archived) }))
      .thenRefused('ROOM_ARCHIVED')
  })

  it('a title has 1 to 200 characters once trimmed', () => {
    rules
      .given([])
      .when(create({ title: '   ' }))
      .thenRefused('ARTIFACT_TITLE_INVALID')
    rules
      .given([])
      .when(create({ title: 'x'.repeat(201) }))
      .thenRefused('ARTIFACT_TITLE_INVALID')
    rules
      .given([])
      .when(create({ title: 'x'.repeat(200) }))
      .then([created(undefined, { title: 'x'.repeat(200) })])
  })

  it('content is at most 512 KiB of UTF-8, counted in bytes, and not blank', () => {
    const fits = 'a'.repeat(ARTIFACT_CONTENT_MAX_BYTES)
    rules
      .given([])
      .when(create({ payload: { kind: 'report', content: fits } }))
      .then([created({ kind: 'report', content: fits })])
    rules
      .given([])
      .when(create({ payload: { kind: 'report', content: `${fits}a` } }))
      .thenRefused('ARTIFACT_TOO_LARGE')
    // Half as many characters, each two bytes: one over in bytes.
    rules
      .given([])
      .when(create({ payload: { kind: 'report', content: `${'é'.repeat(ARTIFACT_CONTENT_MAX_BYTES / 2)}a` } }))
      .thenRefused('ARTIFACT_TOO_LARGE')
    rules
      .given([])
      .when(create({ payload: { kind: 'report', content: ' \n ' } }))
      .thenRefused('ARTIFACT_CONTENT_EMPTY')
  })

  it('a patch is a unified diff', () => {
    rules
      .given([])
      .when(create({ payload: { kind: 'patch', content: 'please change two to deux' } }))
      .thenRefused('ARTIFACT_PATCH_INVALID')
  })

  it('a link is an absolute http(s) URL', () => {
    for (const url of [
      'javascript:alert(1)',
      'ftp://example.com/x',
      '/relative',
      'not a url',
      `https://e.com/${'x'.repeat(2_048)}`,
    ]) {
      rules
        .given([])
        .when(create({ payload: { kind: 'link', url } }))
        .thenRefused('ARTIFACT_URL_INVALID')
    }
    rules
      .given([])
      .when(create({ payload: { kind: 'link', url: 'http://localhost:3000/x' } }))
      .then([created({ kind: 'link', url: 'http://localhost:3000/x' })])
  })
})

describe('artifacts: attached to a task', () => {
  const rules = spec(artifact)
  const onTask = (data: Extract<ArtifactEvent, { type: 'artifact.created' }>['data']['createdBy'] = 'alice') =>
    created(undefined, { taskId, createdBy: data })

  it('lives in the task’s room: given alone, or with that room', () => {
    rules
      .given([])
      .when(create({ roomId: null, task: taskOf(taskCreated()) }))
      .then([onTask()])
    rules
      .given([])
      .when(create({ task: taskOf(taskCreated()) }))
      .then([onTask()])
  })

  it('another room than the task’s is refused', () =>
    rules
      .given([])
      .when(create({ roomId: 'room-2', task: taskOf(taskCreated()) }))
      .thenRefused('TASK_NOT_IN_ROOM'))

  it('a task that does not exist, or was deleted, is not found', () => {
    rules
      .given([])
      .when(create({ roomId: null, task: taskOf() }))
      .thenRefused('TASK_NOT_FOUND', 'not_found')
    const deleted: TaskEvent = { type: 'task.deleted', data: { taskId, by: 'alice', at } }
    rules
      .given([])
      .when(create({ task: taskOf(taskCreated(), deleted) }))
      .thenRefused('TASK_NOT_FOUND', 'not_found')
  })

  it('the task’s people add to it without reading its room; outsiders find no task', () => {
    const privateRoom = roomOf(roomCreated('private', ['alice']))
    const assigned = taskOf(taskCreated({ assignee: { id: 'carol', type: 'user' } }))
    rules
      .given([])
      .when(create({ actor: carol, task: assigned, room: privateRoom }))
      .then([onTask('carol')])
    rules
      .given([])
      .when(create({ actor: bob, task: assigned, room: privateRoom }))
      .thenRefused('TASK_NOT_FOUND', 'not_found')
  })

  it('a watcher reads the task but does not change it', () => {
    const watched = taskOf(taskCreated(), { type: 'task.watcher_added', data: { taskId, userId: 'carol', by: 'carol', at } })
    rules
      .given([])
      .when(create({ actor: carol, task: watched, room: roomOf(roomCreated('private', ['alice'])) }))
      .thenRefused('FORBIDDEN', 'forbidden')
  })
})

describe('artifacts: changing and deleting', () => {
  const rules = spec(artifact)

  it('a rename keeps the version; new content is the next version', () => {
    rules
      .given([report])
      .when(update(alice, { title: ' Findings ' }))
      .then([
        {
          type: 'artifact.updated',
          data: {
            artifactId,
            roomId,
            taskId: null,
            kind: 'report',
            title: 'Findings',
            version: 1,
            updatedBy: 'alice',
            at: later,
          },
        },
      ])
    const v2: ArtifactEvent = {
      type: 'artifact.updated',
      data: {
        artifactId,
        roomId,
        taskId: null,
        kind: 'report',
        title: 'The fix',
        version: 2,
        content: 'v2',
        updatedBy: 'alice',
        at: later,
      },
    }
    rules
      .given([report])
      .when(update(alice, { content: 'v2' }))
      .then([v2])
    rules
      .given([report, v2])
      .when(update(alice, { content: 'v3' }))
      .then([{ ...v2, data: { ...v2.data, version: 3, content: 'v3' } }])
  })

  it('the same title and content change nothing', () =>
    rules
      .given([report])
      .when(update(alice, { title: 'The fix', content: REPORT }))
      .then([]))

  it('its creator or an admin changes it, nobody else', () => {
    rules
      .given([report])
      .when(update(bob, { title: 'Mine now' }))
      .thenRefused('FORBIDDEN', 'forbidden')
    expect(artifact.decide(update(admin, { title: 'Moderated' }), fold(artifact, [report]))).toHaveLength(1)
    rules.given([report]).when(remove(bob)).thenRefused('FORBIDDEN', 'forbidden')
  })

  it('a file or a link has no text to replace, and a new patch must be a diff too', () => {
    const link = created({ kind: 'link', url: 'https://e.com' })
    rules
      .given([link])
      .when(update(alice, { content: 'text' }))
      .thenRefused('ARTIFACT_CONTENT_UNSUPPORTED')
    rules
      .given([created()])
      .when(update(alice, { content: 'not a diff' }))
      .thenRefused('ARTIFACT_PATCH_INVALID')
  })

  it('in an archived room an artifact is no longer changed, but may be deleted', () => {
    const place = { room: roomOf(roomCreated(), archived), task: null }
    rules
      .given([report])
      .when(update(alice, { title: 'Late' }, place))
      .thenRefused('ROOM_ARCHIVED')
    rules
      .given([report])
      .when(remove(alice, place))
      .then([
        {
          type: 'artifact.deleted',
          data: { artifactId, roomId, taskId: null, kind: 'report', title: 'The fix', version: 1, deletedBy: 'alice', at: later },
        },
      ])
  })

  it('one who lost the room finds no artifact; an admin still moderates', () => {
    const left = { room: roomOf(roomCreated('private', ['bob'])), task: null }
    rules
      .given([report])
      .when(update(alice, { title: 'x' }, left))
      .thenRefused('ROOM_NOT_FOUND', 'not_found')
    expect(artifact.decide(remove(admin, left), fold(artifact, [report]))[0]?.type).toBe('artifact.deleted')
  })

  it('a deleted artifact is gone: deleting again changes nothing, changing it is not found', () => {
    const deleted: ArtifactEvent = {
      type: 'artifact.deleted',
      data: { artifactId, roomId, taskId: null, kind: 'report', title: 'The fix', version: 1, deletedBy: 'alice', at: later },
    }
    rules.given([report, deleted]).when(remove(alice)).then([])
    rules
      .given([report, deleted])
      .when(update(alice, { title: 'x' }))
      .thenRefused('ARTIFACT_NOT_FOUND', 'not_found')
    rules.given([]).when(remove(alice)).thenRefused('ARTIFACT_NOT_FOUND', 'not_found')
  })

  it('every event names the artifact, its room, task, kind and title', () => {
    const events = [
      created(undefined, { taskId }),
      ...artifact.decide(update(alice, { title: 'Renamed' }, { room: roomOf(), task: null }), fold(artifact, [created()])),
      ...artifact.decide(remove(alice), fold(artifact, [created()])),
    ]
    for (const e of events)
      expect(Object.keys(e.data)).toEqual(expect.arrayContaining(['artifactId', 'roomId', 'taskId', 'kind', 'title']))
  })
})

describe('unified diffs', () => {
  it('accepts git and plain unified diffs, several files and hunks, missing newline markers', () => {
    expect(isUnifiedDiff(PATCH)).toBe(true)
    expect(isUnifiedDiff('--- a\n+++ b\n@@ -0,0 +1 @@\n+new\n\\ No newline at end of file\n')).toBe(true)
    expect(isUnifiedDiff(`${PATCH}--- b.txt\n+++ b.txt\n@@ -1 +1,2 @@\n x\n+y\n@@ -10,2 +11 @@\n-p\n q\n`)).toBe(true)
    // A rename without changes has a git header and no hunk.
    expect(isUnifiedDiff('diff --git a/x b/y\nsimilarity index 100%\nrename from x\nrename to y\n')).toBe(true)
    expect(isUnifiedDiff('Subject: fix\r\n\r\n--- a\r\n+++ b\r\n@@ -1 +1 @@\r\n-a\r\n+b\r\n')).toBe(true)
  })

  it('refuses text without files, hunks outside a file, and hunks whose lines do not add up', () => {
    expect(isUnifiedDiff('just words')).toBe(false)
    expect(isUnifiedDiff('@@ -1 +1 @@\n-a\n+b\n')).toBe(false)
    expect(isUnifiedDiff('--- a\n+++ b\n@@ -1,2 +1,2 @@\n-a\n+b\n')).toBe(false)
    expect(isUnifiedDiff('--- a\n+++ b\n@@ -1 +1 @@\n-a\n-b\n+c\n')).toBe(false)
    expect(isUnifiedDiff('--- a\n+++ b\n@@ -1 +1 @@\n*a\n+b\n')).toBe(false)
  })
})
