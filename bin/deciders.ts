import { account, credential, identity, invite } from '../domain/accounts.ts'
import { agent } from '../domain/agents.ts'
import { artifact } from '../domain/artifacts.ts'
import type { Decider, DomainEvent } from '../domain/decider.ts'
import { erasure } from '../domain/erasure.ts'
import { draft, message, readMark } from '../domain/messages.ts'
import { operators } from '../domain/operators.ts'
import { org, orgName, usernameReservation } from '../domain/orgs.ts'
import { room } from '../domain/rooms.ts'
import { run } from '../domain/runs.ts'
import { space } from '../domain/spaces.ts'
import { taskQuestion } from '../domain/task-questions.ts'
import { taskSchedule } from '../domain/task-schedules.ts'
import { task } from '../domain/tasks.ts'
import { thread } from '../domain/threads.ts'
import { budget, caps, prices } from '../domain/usage.ts'

// biome-ignore lint/suspicious/noExplicitAny: a registry over deciders of every shape
type AnyDecider = Decider<any, DomainEvent, any>

/**
 * Every stream category and the decider that folds its streams (`<category>-<id>`): what the command
 * handlers write. Audit replay folds a stream to its state at a moment with it. A new context adds its own.
 */
export const decidersByCategory: ReadonlyMap<string, AnyDecider> = new Map<string, AnyDecider>([
  ['org', org as AnyDecider],
  ['org_name', orgName as AnyDecider],
  ['username', usernameReservation as AnyDecider],
  ['account', account as AnyDecider],
  ['account_identity', identity as AnyDecider],
  ['credential', credential as AnyDecider],
  ['invite', invite as AnyDecider],
  ['space', space as AnyDecider],
  ['room', room as AnyDecider],
  ['message', message as AnyDecider],
  ['room_read', readMark as AnyDecider],
  ['draft', draft as AnyDecider],
  ['erasure', erasure as AnyDecider],
  ['task', task as AnyDecider],
  ['thread', thread as AnyDecider],
  ['run', run as AnyDecider],
  ['task_schedule', taskSchedule as AnyDecider],
  ['task_question', taskQuestion as AnyDecider],
  ['prices', prices as AnyDecider],
  ['spend_caps', caps as AnyDecider],
  ['budget', budget as AnyDecider],
  ['operators', operators as AnyDecider],
  ['artifact', artifact as AnyDecider],
  ['agent', agent as AnyDecider],
])

export const categoryOf = (stream: string): string => {
  const dash = stream.indexOf('-')
  return dash < 0 ? stream : stream.slice(0, dash)
}

/**
 * Folds events with a stream's decider. An event type the decider does not know (a stream several contexts
 * write, like `org-<id>` with its users' events) leaves the state as it was, and is counted.
 */
export function foldStream(
  decider: AnyDecider,
  events: readonly DomainEvent[],
): { state: unknown; folded: number; unknownTypes: Record<string, number> } {
  let state = decider.initialState
  let folded = 0
  const unknownTypes: Record<string, number> = {}
  for (const e of events) {
    const next = decider.evolve(state, e)
    if (next === undefined) unknownTypes[e.type] = (unknownTypes[e.type] ?? 0) + 1
    else {
      state = next
      folded++
    }
  }
  return { state, folded, unknownTypes }
}
