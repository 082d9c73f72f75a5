import { type Decider, DomainError, type DomainEvent } from './decider.ts'

/*
 * A question about a task put to one person (`task_question-<id>`): an agent (or anyone working on the task) asks,
 * the person it is for answers once. Until then it is an action item of theirs.
 */

export const QUESTION_TEXT_MAX = 4_000
export const ANSWER_TEXT_MAX = 20_000

export type TaskQuestionEvent =
  | DomainEvent<
      'task_question.asked',
      { questionId: string; taskId: string; roomId: string; askedBy: string; toUserId: string; text: string; at: string }
    >
  | DomainEvent<
      'task_question.answered',
      { questionId: string; taskId: string; roomId: string; answeredBy: string; text: string; at: string }
    >

export type QuestionState =
  | { readonly exists: false }
  | {
      readonly exists: true
      readonly taskId: string
      readonly roomId: string
      readonly askedBy: string
      readonly toUserId: string
      readonly answered: boolean
    }

/** The task as the command layer read it, for the actor. */
export type QuestionTask = {
  /** Exists for this tenant, not deleted, and readable by the actor. */
  readonly visible: boolean
  /** The actor may work on it (the task's people, its room's members, admins): who may ask about it. */
  readonly editable: boolean
  readonly roomId: string
}

/** The person asked, as the org and the task know them: null when the org has no such active person. */
export type Recipient = { readonly userId: string; readonly person: boolean; readonly canReadTask: boolean } | null

export type QuestionCommand =
  | {
      type: 'ask'
      questionId: string
      taskId: string
      task: QuestionTask
      askedBy: string
      to: Recipient
      text: string
      at: string
    }
  | { type: 'answer'; questionId: string; task: QuestionTask; actorId: string; text: string; at: string }

const text = (t: string, max: number, what: string) => {
  const v = t.trim()
  if (v.length === 0 || v.length > max) throw new DomainError('QUESTION_TEXT_INVALID', `${what} has 1 to ${max} characters`)
  return v
}

const taskNotFound = () => new DomainError('TASK_NOT_FOUND', 'no such task', 'not_found')
const questionNotFound = () => new DomainError('QUESTION_NOT_FOUND', 'no such question', 'not_found')

export const taskQuestion: Decider<QuestionCommand, TaskQuestionEvent, QuestionState> = {
  initialState: { exists: false },
  decide(c, s) {
    switch (c.type) {
      case 'ask': {
        if (!c.task.visible) throw taskNotFound()
        if (!c.task.editable) throw new DomainError('FORBIDDEN', 'only who works on a task asks about it', 'forbidden')
        if (s.exists) throw new DomainError('QUESTION_EXISTS', 'this question exists', 'conflict')
        if (!c.to || !c.to.person)
          throw new DomainError('QUESTION_RECIPIENT_INVALID', 'a question goes to an active person of the org')
        if (c.to.userId === c.askedBy) throw new DomainError('QUESTION_RECIPIENT_INVALID', 'a question goes to someone else')
        if (!c.to.canReadTask) {
          throw new DomainError('QUESTION_RECIPIENT_CANNOT_READ', 'the person asked cannot read this task: add them to it first')
        }
        return [
          {
            type: 'task_question.asked',
            data: {
              questionId: c.questionId,
              taskId: c.taskId,
              roomId: c.task.roomId,
              askedBy: c.askedBy,
              toUserId: c.to.userId,
              text: text(c.text, QUESTION_TEXT_MAX, 'a question'),
              at: c.at,
            },
          },
        ]
      }
      case 'answer': {
        if (!s.exists) throw questionNotFound()
        // A question is seen by who asked it, who it is for, and whoever may read its task.
        if (!c.task.visible && c.actorId !== s.toUserId && c.actorId !== s.askedBy) throw questionNotFound()
        if (c.actorId !== s.toUserId) throw new DomainError('FORBIDDEN', 'only the person asked answers', 'forbidden')
        if (s.answered) throw new DomainError('QUESTION_ANSWERED', 'this question has been answered', 'conflict')
        return [
          {
            type: 'task_question.answered',
            data: {
              questionId: c.questionId,
              taskId: s.taskId,
              roomId: s.roomId,
              answeredBy: c.actorId,
              text: text(c.text, ANSWER_TEXT_MAX, 'an answer'),
              at: c.at,
            },
          },
        ]
      }
    }
  },
  evolve(s, e) {
    switch (e.type) {
      case 'task_question.asked':
        return s.exists
          ? s
          : {
              exists: true,
              taskId: e.data.taskId,
              roomId: e.data.roomId,
              askedBy: e.data.askedBy,
              toUserId: e.data.toUserId,
              answered: false,
            }
      case 'task_question.answered':
        return s.exists ? { ...s, answered: true } : s
    }
  },
}
