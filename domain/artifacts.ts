import { type Decider, DomainError, type DomainEvent } from './decider.ts'
import { canRead, type RoomActor, type RoomState } from './rooms.ts'
import { canEditTask, canReadTask, type TaskState } from './tasks.ts'

/*
 * Artifacts: what people, agents and processors produce and keep beside a conversation — a patch (unified diff),
 * a report (text), a stored file (by id) or a link. Each is attached to a room, or to a task (and so to the task's
 * room): whoever may read that room reads it; whoever may write in it (its members) adds to it.
 */

export const ARTIFACT_KINDS = ['patch', 'report', 'file', 'link'] as const
export type ArtifactKind = (typeof ARTIFACT_KINDS)[number]

export const ARTIFACT_TITLE_MAX = 200
/** Of a patch's or report's text, in UTF-8 bytes: half the request body limit, so any JSON escaping still fits. */
export const ARTIFACT_CONTENT_MAX_BYTES = 512 * 1024
export const ARTIFACT_URL_MAX = 2_048

/** Who makes the artifact: a user or agent of the org (room rules apply), or a processor of the platform. */
export type ArtifactActor =
  | (RoomActor & { readonly type: 'user' | 'agent' })
  | { readonly type: 'system'; readonly userId: string }

/** The task an artifact is attached to, folded by the caller from the task's stream. */
export type ArtifactTask = { readonly taskId: string; readonly state: TaskState }

/** What identifies an artifact in every event about it: what realtime and read models key their changes by. */
type Subject = { artifactId: string; roomId: string; taskId: string | null; kind: ArtifactKind; title: string }

export type ArtifactEvent =
  | DomainEvent<
      'artifact.created',
      Subject & {
        /** The agent run that produced it, kept as a reference (runs do not decide access). */
        runId: string | null
        /** A patch's or report's text; null for a file or a link. */
        content: string | null
        fileId: string | null
        url: string | null
        createdBy: string
        createdByType: 'user' | 'agent' | 'system'
        at: string
      }
    >
  | DomainEvent<
      'artifact.updated',
      Subject & {
        /** Bumped by each change of content (the first content is version 1); a rename keeps it. */
        version: number
        /** Present when the content changed: the new version's text. */
        content?: string
        updatedBy: string
        at: string
      }
    >
  | DomainEvent<'artifact.deleted', Subject & { version: number; deletedBy: string; at: string }>

export type ArtifactState =
  | { readonly exists: false }
  | {
      readonly exists: true
      readonly deleted: boolean
      readonly kind: ArtifactKind
      readonly title: string
      readonly roomId: string
      readonly taskId: string | null
      readonly createdBy: string
      readonly content: string | null
      readonly version: number
    }

/**
 * Where the artifact lives, folded by the caller: its room's stream, and its task's when it is attached to one (who
 * may read or write it follows from the task then: its room's readers and the people on it).
 */
type Place = { readonly room: RoomState; readonly task: ArtifactTask | null }

export type ArtifactPayload =
  | { readonly kind: 'patch' | 'report'; readonly content: string }
  | { readonly kind: 'file'; readonly fileId: string }
  | { readonly kind: 'link'; readonly url: string }

export type ArtifactCommand =
  | (Place & {
      type: 'create'
      artifactId: string
      title: string
      payload: ArtifactPayload
      /** The room asked for; null when only a task is given (the task's room is then the artifact's). */
      roomId: string | null
      runId: string | null
      actor: ArtifactActor
      at: string
    })
  | (Place & {
      type: 'update'
      artifactId: string
      title?: string
      content?: string
      actor: ArtifactActor
      at: string
    })
  | (Place & { type: 'delete'; artifactId: string; actor: ArtifactActor; at: string })

const isAdmin = (a: ArtifactActor) => a.type !== 'system' && (a.role === 'owner' || a.role === 'admin')

const hidden = () => new DomainError('ARTIFACT_NOT_FOUND', 'no such artifact', 'not_found')

const taskHidden = () => new DomainError('TASK_NOT_FOUND', 'no such task', 'not_found')

const liveTask = (p: Place) => (p.task?.state.exists && !p.task.state.deleted ? p.task.state : null)

/**
 * Whether this actor may read where the artifact lives: a live task's readers (its room's, and the people on it),
 * else the room's (an artifact of a task deleted since stays in the task's room).
 */
function sees(p: Place, actor: RoomActor): boolean {
  const task = liveTask(p)
  return task ? canReadTask(task, p.room, actor.userId, actor.role) : canRead(p.room, actor.userId, actor.role)
}

/** Where the artifact lives, as one who reads it (admins too: they moderate) or the platform. */
function readable(p: Place, actor: ArtifactActor): void {
  if (!p.room.exists) throw new DomainError('ROOM_NOT_FOUND', 'no such room', 'not_found')
  if (actor.type === 'system' || isAdmin(actor) || sees(p, actor)) return
  throw p.task ? taskHidden() : new DomainError('ROOM_NOT_FOUND', 'no such room', 'not_found')
}

/**
 * Adding to a room takes its membership (as posting a message does); adding to a task, the right to change the
 * task (its people, its room's members, admins who read it). Never in an archived room.
 */
function writable(p: Place, actor: ArtifactActor): void {
  if (!p.room.exists) throw new DomainError('ROOM_NOT_FOUND', 'no such room', 'not_found')
  if (actor.type !== 'system') {
    if (!sees(p, actor)) throw p.task ? taskHidden() : new DomainError('ROOM_NOT_FOUND', 'no such room', 'not_found')
    const task = liveTask(p)
    if (task) {
      if (!canEditTask(task, p.room, actor))
        throw new DomainError('FORBIDDEN', 'only its people, its room’s members and admins add to a task', 'forbidden')
    } else if (!p.room.members.has(actor.userId))
      throw new DomainError('NOT_A_MEMBER', 'join this room to add artifacts to it', 'forbidden')
  }
  if (p.room.archived) throw new DomainError('ROOM_ARCHIVED', 'this room is archived')
}

const title = (t: string) => {
  const trimmed = t.trim()
  if (trimmed.length === 0 || trimmed.length > ARTIFACT_TITLE_MAX)
    throw new DomainError('ARTIFACT_TITLE_INVALID', `an artifact's title has 1 to ${ARTIFACT_TITLE_MAX} characters`)
  return trimmed
}

const utf8Bytes = (s: string) => new TextEncoder().encode(s).length

const HUNK = /^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@/

/**
 * Whether a text is a unified diff: at least one file (a `diff --git` line, or `---`/`+++` headers), and every hunk
 * after a `+++` header holding exactly the old and new line counts its `@@` header announces. What lies outside hunks
 * (a commit message, `index` lines, git's extended headers) is allowed, as `git apply` allows it.
 */
export function isUnifiedDiff(text: string): boolean {
  const lines = text.split('\n')
  if (lines.at(-1) === '') lines.pop()
  let files = 0
  let inFile = false
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.replace(/\r$/, '')
    if (line.startsWith('diff --git ')) {
      files++
      inFile = false
      continue
    }
    if (line.startsWith('--- ') && lines[i + 1]?.startsWith('+++ ')) {
      files++
      inFile = true
      i++
      continue
    }
    const hunk = HUNK.exec(line)
    if (!hunk) continue
    if (!inFile) return false
    let old = hunk[2] === undefined ? 1 : Number(hunk[2])
    let added = hunk[4] === undefined ? 1 : Number(hunk[4])
    while ((old > 0 || added > 0) && i + 1 < lines.length) {
      const body = lines[++i]!.replace(/\r$/, '')
      if (body.startsWith('\\')) continue
      const mark = body[0] ?? ' '
      if (mark === ' ') {
        old--
        added--
      } else if (mark === '-') old--
      else if (mark === '+') added--
      else return false
      if (old < 0 || added < 0) return false
    }
    if (old !== 0 || added !== 0) return false
  }
  return files > 0
}

/** A patch's or report's text, as its kind requires. */
const content = (kind: ArtifactKind, text: string) => {
  if (kind !== 'patch' && kind !== 'report')
    throw new DomainError('ARTIFACT_CONTENT_UNSUPPORTED', `a ${kind} artifact has no text content`)
  if (text.trim().length === 0) throw new DomainError('ARTIFACT_CONTENT_EMPTY', `a ${kind} needs content`)
  if (utf8Bytes(text) > ARTIFACT_CONTENT_MAX_BYTES)
    throw new DomainError('ARTIFACT_TOO_LARGE', `content is limited to ${ARTIFACT_CONTENT_MAX_BYTES} bytes: store a file instead`)
  if (kind === 'patch' && !isUnifiedDiff(text))
    throw new DomainError('ARTIFACT_PATCH_INVALID', 'a patch is a unified diff (file headers and well-formed hunks)')
  return text
}

const url = (u: string) => {
  let parsed: URL
  try {
    parsed = new URL(u)
  } catch {
    throw new DomainError('ARTIFACT_URL_INVALID', 'a link is an absolute http(s) URL')
  }
  if ((parsed.protocol !== 'http:' && parsed.protocol !== 'https:') || u.length > ARTIFACT_URL_MAX)
    throw new DomainError('ARTIFACT_URL_INVALID', `a link is an absolute http(s) URL of at most ${ARTIFACT_URL_MAX} characters`)
  return u
}

/** The room the artifact lives in: the one asked for, or the task's; both given, they must agree. */
function targetRoom(c: Extract<ArtifactCommand, { type: 'create' }>): string {
  if (!c.task) {
    if (c.roomId === null) throw new DomainError('ARTIFACT_TARGET_MISSING', 'attach an artifact to a room or a task')
    return c.roomId
  }
  const t = c.task.state
  if (!t.exists || t.deleted) throw taskHidden()
  if (c.roomId !== null && c.roomId !== t.roomId)
    throw new DomainError('TASK_NOT_IN_ROOM', 'the task lives in another room than the one given')
  return t.roomId
}

type Existing = Extract<ArtifactState, { exists: true }>

const live = (s: ArtifactState): Existing => {
  if (!s.exists || s.deleted) throw hidden()
  return s
}

const subject = (artifactId: string, a: Existing, newTitle = a.title) => ({
  artifactId,
  roomId: a.roomId,
  taskId: a.taskId,
  kind: a.kind,
  title: newTitle,
})

export const artifact: Decider<ArtifactCommand, ArtifactEvent, ArtifactState> = {
  initialState: { exists: false },
  decide(c, s) {
    switch (c.type) {
      case 'create': {
        if (s.exists) throw new DomainError('ARTIFACT_EXISTS', 'this artifact exists', 'conflict')
        const roomId = targetRoom(c)
        writable(c, c.actor)
        const p = c.payload
        return [
          {
            type: 'artifact.created',
            data: {
              artifactId: c.artifactId,
              roomId,
              taskId: c.task?.taskId ?? null,
              kind: p.kind,
              title: title(c.title),
              runId: c.runId,
              content: p.kind === 'patch' || p.kind === 'report' ? content(p.kind, p.content) : null,
              fileId: p.kind === 'file' ? p.fileId : null,
              url: p.kind === 'link' ? url(p.url) : null,
              createdBy: c.actor.userId,
              createdByType: c.actor.type,
              at: c.at,
            },
          },
        ]
      }
      case 'update': {
        const a = live(s)
        readable(c, c.actor)
        if (a.createdBy !== c.actor.userId && !isAdmin(c.actor) && c.actor.type !== 'system')
          throw new DomainError('FORBIDDEN', 'only its creator or an admin changes an artifact', 'forbidden')
        if (c.room.exists && c.room.archived) throw new DomainError('ROOM_ARCHIVED', 'this room is archived')
        const newTitle = c.title === undefined ? a.title : title(c.title)
        const newContent = c.content === undefined ? a.content : content(a.kind, c.content)
        const contentChanged = newContent !== a.content
        if (newTitle === a.title && !contentChanged) return []
        return [
          {
            type: 'artifact.updated',
            data: {
              ...subject(c.artifactId, a, newTitle),
              version: contentChanged ? a.version + 1 : a.version,
              ...(contentChanged && newContent !== null ? { content: newContent } : {}),
              updatedBy: c.actor.userId,
              at: c.at,
            },
          },
        ]
      }
      case 'delete': {
        if (s.exists && s.deleted) return []
        const a = live(s)
        readable(c, c.actor)
        if (a.createdBy !== c.actor.userId && !isAdmin(c.actor) && c.actor.type !== 'system')
          throw new DomainError('FORBIDDEN', 'only its creator or an admin deletes an artifact', 'forbidden')
        return [
          {
            type: 'artifact.deleted',
            data: { ...subject(c.artifactId, a), version: a.version, deletedBy: c.actor.userId, at: c.at },
          },
        ]
      }
    }
  },
  evolve(s, e) {
    if (e.type === 'artifact.created') {
      return {
        exists: true,
        deleted: false,
        kind: e.data.kind,
        title: e.data.title,
        roomId: e.data.roomId,
        taskId: e.data.taskId,
        createdBy: e.data.createdBy,
        content: e.data.content,
        version: 1,
      }
    }
    if (!s.exists) return s
    switch (e.type) {
      case 'artifact.updated':
        return { ...s, title: e.data.title, version: e.data.version, content: e.data.content ?? s.content }
      case 'artifact.deleted':
        return { ...s, deleted: true }
    }
  },
}
