import { createRoute, z } from '@hono/zod-openapi'
import { streamName } from '../adapters/event-store.ts'
import {
  ARTIFACT_TITLE_MAX,
  ARTIFACT_URL_MAX,
  type ArtifactActor,
  type ArtifactKind,
  type ArtifactPayload,
  type ArtifactState,
  type ArtifactTask,
  artifact,
} from '../domain/artifacts.ts'
import { type RoomState, room } from '../domain/rooms.ts'
import { task as taskDecider } from '../domain/tasks.ts'
import type { AppDeps } from '../http/context.ts'
import { actorOf, type Principal, principalOf } from '../http/principal.ts'
import { notFound } from '../http/problem.ts'
import { router } from '../http/router.ts'
import { ClientChosenId, json, jsonBody, Position, problemResponse, Uuid } from '../http/schemas.ts'
import { bearerSecurity, positionOf } from '../http/tenant-route.ts'
import { commandContext, pipelineDeps } from './command-context.ts'
import { type CommandContext, type DecisionReader, handleCommand, type PipelineDeps } from './pipeline.ts'
import { roomStream } from './rooms.ts'
import { taskStream } from './tasks.ts'

export const artifactStream = (id: string) => streamName('artifact', id)

/** What makes an artifact, from a request or from a processor or the agents worker. */
export type CreateArtifactInput = {
  /** Chosen by the caller to make a retry answer as the first time (a processor derives it from its event). */
  readonly artifactId?: string
  readonly kind: ArtifactKind
  readonly title: string
  readonly roomId?: string | null
  readonly taskId?: string | null
  readonly runId?: string | null
  readonly content?: string | null
  readonly fileId?: string | null
  readonly url?: string | null
  readonly actor: ArtifactActor
}

const payloadOf = (input: CreateArtifactInput): ArtifactPayload => {
  switch (input.kind) {
    case 'patch':
    case 'report':
      return { kind: input.kind, content: input.content ?? '' }
    case 'file':
      return { kind: 'file', fileId: input.fileId ?? '' }
    case 'link':
      return { kind: 'link', url: input.url ?? '' }
  }
}

/**
 * Creates an artifact: the one way in for the HTTP route, processors and the agents worker. Its room (the one
 * given, or the task's) is read and the append conditioned on it, and on the task's stream when a task is given:
 * an artifact is never added to a room its creator just left, or to a task just deleted.
 */
export async function createArtifact(
  deps: PipelineDeps,
  ctx: CommandContext,
  input: CreateArtifactInput,
): Promise<{ artifactId: string; position: number | null }> {
  const artifactId = input.artifactId ?? ctx.newId()
  const r = await handleCommand(
    deps,
    artifact,
    artifactStream(artifactId),
    async (_, read) => {
      const task = input.taskId ? { taskId: input.taskId, state: await read(taskDecider, taskStream(input.taskId)) } : null
      const taskRoom = task?.state.exists ? task.state.roomId : null
      const roomId = taskRoom ?? input.roomId ?? null
      return {
        type: 'create' as const,
        artifactId,
        title: input.title,
        payload: payloadOf(input),
        roomId: input.roomId ?? null,
        task,
        runId: input.runId ?? null,
        room: roomId ? await read(room, roomStream(roomId)) : room.initialState,
        actor: input.actor,
        at: ctx.now().toISOString(),
      }
    },
    ctx,
    { create: true },
  )
  return { artifactId, position: positionOf(r.position) }
}

/** A command on an artifact is decided on the room (and task) it lives in, read and conditioned on in the same attempt. */
async function itsPlace(state: ArtifactState, read: DecisionReader): Promise<{ room: RoomState; task: ArtifactTask | null }> {
  if (!state.exists) throw notFound('no such artifact')
  const taskId = state.taskId
  const [roomState, taskState] = await Promise.all([
    read(room, roomStream(state.roomId)),
    taskId ? read(taskDecider, taskStream(taskId)) : null,
  ])
  return { room: roomState, task: taskId && taskState ? { taskId, state: taskState } : null }
}

/** Renames an artifact or gives it new content (its next version): for the route and for agents revising their work. */
export async function changeArtifact(
  deps: PipelineDeps,
  ctx: CommandContext,
  input: { artifactId: string; title?: string | undefined; content?: string | undefined; actor: ArtifactActor },
): Promise<{ artifactId: string; version: number; position: number | null }> {
  const r = await handleCommand(
    deps,
    artifact,
    artifactStream(input.artifactId),
    async (state, read) => ({
      type: 'update' as const,
      artifactId: input.artifactId,
      ...(input.title !== undefined ? { title: input.title } : {}),
      ...(input.content !== undefined ? { content: input.content } : {}),
      ...(await itsPlace(state, read)),
      actor: input.actor,
      at: ctx.now().toISOString(),
    }),
    ctx,
  )
  return { artifactId: input.artifactId, version: r.state.exists ? r.state.version : 1, position: positionOf(r.position) }
}

/** Deletes an artifact; deleting it again changes nothing. */
export async function deleteArtifact(
  deps: PipelineDeps,
  ctx: CommandContext,
  input: { artifactId: string; actor: ArtifactActor },
): Promise<{ artifactId: string; position: number | null }> {
  const r = await handleCommand(
    deps,
    artifact,
    artifactStream(input.artifactId),
    async (state, read) => ({
      type: 'delete' as const,
      artifactId: input.artifactId,
      ...(await itsPlace(state, read)),
      actor: input.actor,
      at: ctx.now().toISOString(),
    }),
    ctx,
  )
  return { artifactId: input.artifactId, position: positionOf(r.position) }
}

export const artifactActor = (me: Principal): ArtifactActor => ({
  type: me.type === 'agent' ? 'agent' : 'user',
  userId: me.userId,
  role: me.role,
})

const Title = z
  .string()
  .min(1)
  .max(ARTIFACT_TITLE_MAX * 2)
const attachment = {
  id: ClientChosenId,
  title: Title,
  roomId: Uuid.optional().openapi({ description: 'the room it is attached to (or give taskId)' }),
  taskId: Uuid.optional().openapi({ description: 'the task it is attached to; it then lives in the task’s room' }),
  runId: Uuid.optional().openapi({ description: 'the agent run that produced it (a reference only)' }),
}
const Text = z.string().openapi({ description: 'the text, at most 512 KiB of UTF-8' })

const CreateBody = z
  .discriminatedUnion('kind', [
    z.object({
      kind: z.literal('patch'),
      content: Text.openapi({ description: 'a unified diff, at most 512 KiB' }),
      ...attachment,
    }),
    z.object({ kind: z.literal('report'), content: Text, ...attachment }),
    z.object({ kind: z.literal('file'), fileId: Uuid, ...attachment }),
    z.object({
      kind: z.literal('link'),
      url: z.url({ protocol: /^https?$/, error: 'an absolute http(s) URL' }).max(ARTIFACT_URL_MAX),
      ...attachment,
    }),
  ])
  .refine((b) => b.roomId !== undefined || b.taskId !== undefined, {
    message: 'give roomId or taskId',
    path: ['roomId'],
  })
  .openapi('CreateArtifact')

const Answer = z.object({ artifactId: Uuid, position: Position })

const routes = {
  create: createRoute({
    method: 'post',
    path: '/api/artifacts',
    tags: ['artifacts'],
    summary: 'Add an artifact (a patch, a report, a stored file or a link) to a room or a task',
    description:
      'Attached to a room, the caller is a member of it; to a task, one who may change the task (its people, its ' +
      'room’s members, admins who read it). Never in an archived room. ' +
      'A patch is a unified diff, a report any text, both at most 512 KiB of UTF-8 (larger outputs are stored ' +
      'as files); a link is an absolute http(s) URL.',
    security: bearerSecurity,
    request: jsonBody(CreateBody),
    responses: {
      201: json('created', Answer),
      403: problemResponse('not a member of the room'),
      404: problemResponse('no such room or task'),
      409: problemResponse('the id is taken by another artifact'),
      422: problemResponse('refused: archived room, invalid patch, content too large'),
    },
  }),
  update: createRoute({
    method: 'patch',
    path: '/api/artifacts/{id}',
    tags: ['artifacts'],
    summary: 'Rename an artifact or replace its content (a new version)',
    description:
      'Its creator or an admin. New content (of a patch or a report) makes a new version, numbered from 1; ' +
      'every version stays readable (`GET /api/artifacts/{id}?version=`). A rename keeps the version.',
    security: bearerSecurity,
    request: {
      params: z.object({ id: Uuid }),
      ...jsonBody(
        z
          .object({ title: Title.optional(), content: Text.optional() })
          .refine((b) => b.title !== undefined || b.content !== undefined, { message: 'give title or content', path: ['title'] }),
      ),
    },
    responses: {
      200: json('updated', Answer.extend({ version: z.number().int().positive() })),
      403: problemResponse('not its creator or an admin'),
      404: problemResponse('no such artifact'),
      422: problemResponse('refused'),
    },
  }),
  remove: createRoute({
    method: 'delete',
    path: '/api/artifacts/{id}',
    tags: ['artifacts'],
    summary: 'Delete an artifact (its creator or an admin)',
    security: bearerSecurity,
    request: { params: z.object({ id: Uuid }) },
    responses: {
      200: json('deleted', Answer),
      403: problemResponse('not its creator or an admin'),
      404: problemResponse('no such artifact'),
    },
  }),
}

export function artifactsCommands(deps: AppDeps) {
  const app = router()
  const pd = pipelineDeps(deps)

  app.openapi(routes.create, async (c) => {
    const me = principalOf(c)
    const body = c.req.valid('json')
    const ctx = commandContext(c, actorOf(me), me.tenantId)
    const r = await createArtifact(pd, ctx, {
      artifactId: body.id,
      kind: body.kind,
      title: body.title,
      roomId: body.roomId ?? null,
      taskId: body.taskId ?? null,
      runId: body.runId ?? null,
      content: 'content' in body ? body.content : null,
      fileId: 'fileId' in body ? body.fileId : null,
      url: 'url' in body ? body.url : null,
      actor: artifactActor(me),
    })
    return c.json(r, 201)
  })

  app.openapi(routes.update, async (c) => {
    const me = principalOf(c)
    const { id } = c.req.valid('param')
    const body = c.req.valid('json')
    const ctx = commandContext(c, actorOf(me), me.tenantId)
    const r = await changeArtifact(pd, ctx, {
      artifactId: id,
      title: body.title,
      content: body.content,
      actor: artifactActor(me),
    })
    return c.json(r, 200)
  })

  app.openapi(routes.remove, async (c) => {
    const me = principalOf(c)
    const { id } = c.req.valid('param')
    const ctx = commandContext(c, actorOf(me), me.tenantId)
    return c.json(await deleteArtifact(pd, ctx, { artifactId: id, actor: artifactActor(me) }), 200)
  })

  return app
}
