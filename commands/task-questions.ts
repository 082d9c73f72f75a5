import { createRoute, z } from '@hono/zod-openapi'
import { streamName } from '../adapters/event-store.ts'
import { orgStream } from '../adapters/streams.ts'
import { org } from '../domain/orgs.ts'
import { type RoomState, room } from '../domain/rooms.ts'
import { ANSWER_TEXT_MAX, QUESTION_TEXT_MAX, type QuestionTask, taskQuestion } from '../domain/task-questions.ts'
import { canEditTask, canReadTask, type TaskState, task } from '../domain/tasks.ts'
import type { AppDeps } from '../http/context.ts'
import { actorOf, type Principal, principalOf } from '../http/principal.ts'
import { router } from '../http/router.ts'
import { ClientChosenId, json, jsonBody, Position, problemResponse, Uuid } from '../http/schemas.ts'
import { bearerSecurity, positionOf } from '../http/tenant-route.ts'
import { commandContext, pipelineDeps } from './command-context.ts'
import { type DecisionReader, handleCommand } from './pipeline.ts'
import { roomStream } from './rooms.ts'
import { taskActor, taskStream } from './tasks.ts'

/* Questions about a task put to one person (domain/task-questions.ts): asked, then answered once by them. */

export const questionStream = (id: string) => streamName('task_question', id)

/** A task and its room, read (and conditioned on) for a question's decision. */
async function readTask(
  read: DecisionReader,
  taskId: string,
): Promise<{ t: TaskState; roomState: RoomState; view: (me: Principal) => QuestionTask }> {
  const t = await read(task, taskStream(taskId))
  const roomState = t.exists ? await read(room, roomStream(t.roomId)) : ({ exists: false } as const)
  return {
    t,
    roomState,
    view: (me) => {
      const visible = canReadTask(t, roomState, me.userId, me.role)
      return {
        visible,
        editable: visible && t.exists && canEditTask(t, roomState, taskActor(me)),
        roomId: t.exists ? t.roomId : '',
      }
    },
  }
}

const routes = {
  ask: createRoute({
    method: 'post',
    path: '/api/tasks/{id}/questions',
    tags: ['tasks', 'action items'],
    summary: 'Ask a person a question about a task (who works on it): an action item of theirs until they answer',
    security: bearerSecurity,
    request: {
      params: z.object({ id: Uuid }),
      ...jsonBody(z.object({ id: ClientChosenId, toUserId: Uuid, text: z.string().min(1).max(QUESTION_TEXT_MAX) })),
    },
    responses: {
      201: json('asked', z.object({ questionId: Uuid, taskId: Uuid, position: Position })),
      403: problemResponse('may not work on the task'),
      404: problemResponse('no such task'),
      422: problemResponse('no such person, or they cannot read the task'),
    },
  }),
  answer: createRoute({
    method: 'post',
    path: '/api/questions/{id}/answer',
    tags: ['tasks', 'action items'],
    summary: 'Answer a question put to you (once)',
    security: bearerSecurity,
    request: { params: z.object({ id: Uuid }), ...jsonBody(z.object({ text: z.string().min(1).max(ANSWER_TEXT_MAX) })) },
    responses: {
      200: json('answered', z.object({ questionId: Uuid, position: Position })),
      403: problemResponse('the question is someone else’s'),
      404: problemResponse('no such question'),
      409: problemResponse('answered already'),
    },
  }),
}

export function taskQuestionsCommands(deps: AppDeps) {
  const app = router()
  const pd = pipelineDeps(deps)

  app.openapi(routes.ask, async (c) => {
    const me = principalOf(c)
    const { id: taskId } = c.req.valid('param')
    const body = c.req.valid('json')
    const ctx = commandContext(c, actorOf(me), me.tenantId)
    const questionId = body.id ?? ctx.newId()
    const r = await handleCommand(
      pd,
      taskQuestion,
      questionStream(questionId),
      async (_, read) => {
        const [{ t, roomState, view }, o] = await Promise.all([readTask(read, taskId), read(org, orgStream(me.tenantId))])
        const member = o.status === 'none' ? undefined : o.members.get(body.toUserId)
        return {
          type: 'ask' as const,
          questionId,
          taskId,
          task: view(me),
          askedBy: me.userId,
          to:
            member?.active === true
              ? {
                  userId: body.toUserId,
                  person: member.type !== 'agent',
                  canReadTask: canReadTask(t, roomState, body.toUserId, member.role),
                }
              : null,
          text: body.text,
          at: ctx.now().toISOString(),
        }
      },
      ctx,
      { create: true },
    )
    return c.json({ questionId, taskId, position: positionOf(r.position) }, 201)
  })

  app.openapi(routes.answer, async (c) => {
    const me = principalOf(c)
    const { id: questionId } = c.req.valid('param')
    const { text } = c.req.valid('json')
    const ctx = commandContext(c, actorOf(me), me.tenantId)
    const r = await handleCommand(
      pd,
      taskQuestion,
      questionStream(questionId),
      async (s, read) => ({
        type: 'answer' as const,
        questionId,
        task: s.exists ? (await readTask(read, s.taskId)).view(me) : { visible: false, editable: false, roomId: '' },
        actorId: me.userId,
        text,
        at: ctx.now().toISOString(),
      }),
      ctx,
    )
    return c.json({ questionId, position: positionOf(r.position) }, 200)
  })

  return app
}
