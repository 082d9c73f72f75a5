import { describe, it } from 'vitest'
import { type QuestionCommand, type QuestionTask, type TaskQuestionEvent, taskQuestion } from '../../domain/task-questions.ts'
import { spec } from './spec.ts'

const at = '2026-12-02T10:00:00.000Z'
const questionId = 'q-1'
const task: QuestionTask = { visible: true, editable: true, roomId: 'room-1' }
const ask = (over: Partial<Extract<QuestionCommand, { type: 'ask' }>> = {}): QuestionCommand => ({
  type: 'ask',
  questionId,
  taskId: 'task-1',
  task,
  askedBy: 'agent-1',
  to: { userId: 'alice', person: true, canReadTask: true },
  text: '  Which branch?  ',
  at,
  ...over,
})
const answer = (actorId: string, over: Partial<Extract<QuestionCommand, { type: 'answer' }>> = {}): QuestionCommand => ({
  type: 'answer',
  questionId,
  task,
  actorId,
  text: 'main',
  at,
  ...over,
})
const asked: TaskQuestionEvent = {
  type: 'task_question.asked',
  data: { questionId, taskId: 'task-1', roomId: 'room-1', askedBy: 'agent-1', toUserId: 'alice', text: 'Which branch?', at },
}
const answered: TaskQuestionEvent = {
  type: 'task_question.answered',
  data: { questionId, taskId: 'task-1', roomId: 'room-1', answeredBy: 'alice', text: 'main', at },
}

describe('task questions', () => {
  const rules = spec(taskQuestion)

  it('who works on a task asks a person who can read it', () => rules.given([]).when(ask()).then([asked]))

  it('a task the asker cannot see, or may not work on, takes no question', () => {
    rules
      .given([])
      .when(ask({ task: { ...task, visible: false, editable: false } }))
      .thenRefused('TASK_NOT_FOUND', 'not_found')
    rules
      .given([])
      .when(ask({ task: { ...task, editable: false } }))
      .thenRefused('FORBIDDEN', 'forbidden')
  })

  it('goes to an active person of the org, not an agent nor the asker, who can read the task', () => {
    rules
      .given([])
      .when(ask({ to: null }))
      .thenRefused('QUESTION_RECIPIENT_INVALID')
    rules
      .given([])
      .when(ask({ to: { userId: 'agent-2', person: false, canReadTask: true } }))
      .thenRefused('QUESTION_RECIPIENT_INVALID')
    rules
      .given([])
      .when(ask({ to: { userId: 'agent-1', person: true, canReadTask: true } }))
      .thenRefused('QUESTION_RECIPIENT_INVALID')
    rules
      .given([])
      .when(ask({ to: { userId: 'bob', person: true, canReadTask: false } }))
      .thenRefused('QUESTION_RECIPIENT_CANNOT_READ')
    rules
      .given([])
      .when(ask({ text: '   ' }))
      .thenRefused('QUESTION_TEXT_INVALID')
    rules.given([asked]).when(ask()).thenRefused('QUESTION_EXISTS', 'conflict')
  })

  it('is answered once, by the person asked', () => {
    rules.given([asked]).when(answer('alice')).then([answered])
    rules.given([asked, answered]).when(answer('alice')).thenRefused('QUESTION_ANSWERED', 'conflict')
    rules.given([asked]).when(answer('bob')).thenRefused('FORBIDDEN', 'forbidden')
    rules
      .given([asked])
      .when(answer('mallory', { task: { ...task, visible: false, editable: false } }))
      .thenRefused('QUESTION_NOT_FOUND', 'not_found')
    rules.given([]).when(answer('alice')).thenRefused('QUESTION_NOT_FOUND', 'not_found')
    rules
      .given([asked])
      .when(answer('alice', { text: '' }))
      .thenRefused('QUESTION_TEXT_INVALID')
  })
})
