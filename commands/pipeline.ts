import { isDeepStrictEqual } from 'node:util'
import {
  type Actor,
  type AppendResult,
  type EventStore,
  type ExpectedRevision,
  type NewEvent,
  type Position,
  type RecordedEvent,
  WrongExpectedRevisionError,
} from '../adapters/event-store.ts'
import type { StreamCache } from '../adapters/stream-cache.ts'
import { type Decider, DomainError, type DomainEvent, fold, foldRecorded } from '../domain/decider.ts'
import { currentVersion, type UpcasterRegistry } from '../domain/upcasting.ts'
import { registerErrorStatus } from '../http/errors.ts'

/** Who asks, on whose behalf, and why: flows from the HTTP request into every event's metadata. */
export type CommandContext = {
  readonly tenantId: string | null
  readonly actor: Actor
  readonly correlationId: string
  /** The request or event that caused this command. */
  readonly causationId: string | null
  readonly now: () => Date
  readonly newId: () => string
}

export type CommandResult<E, S> = {
  readonly events: readonly E[]
  readonly state: S
  /** Where the last appended event stands; for a no-op, where the stream's last event stands (null if none). */
  readonly position: Position | null
}

export class ConcurrencyError extends Error {
  override readonly name = 'ConcurrencyError'
}

// A decision that kept losing to concurrent writers: the client may try again.
registerErrorStatus(ConcurrencyError, 409, 'CONCURRENCY_CONFLICT', {
  title: 'Conflict',
  detail: 'a concurrent change won: try again',
})

export type PipelineDeps = {
  readonly store: EventStore
  readonly upcasters: UpcasterRegistry
  /** The other streams decisions read, as last read here: the append's condition on their revision keeps it safe. */
  readonly streamCache?: StreamCache
}

export const envelope = <E extends DomainEvent>(deps: PipelineDeps, ctx: CommandContext, events: readonly E[]): NewEvent[] => {
  const occurredAt = ctx.now().toISOString()
  return events.map((e) => ({
    id: ctx.newId(),
    type: e.type,
    data: e.data,
    metadata: {
      tenantId: ctx.tenantId,
      actor: ctx.actor,
      correlationId: ctx.correlationId,
      causationId: ctx.causationId,
      occurredAt,
      schemaVersion: currentVersion(deps.upcasters, e.type),
    },
  }))
}

/** Folds recorded events into a decider's state (domain/decider.ts): re-exported for the command handlers. */
export { foldRecorded }

/** A stream's current state, as a tenant may see it (see readTenantStream). */
export async function loadState<C, E, S>(
  store: EventStore,
  decider: Decider<C, E, S>,
  stream: string,
  tenantId: string | null = null,
): Promise<S> {
  return foldRecorded(decider, await readTenantStream(store, stream, tenantId))
}

/**
 * A stream as a tenant may see it: one written for another tenant reads as empty, so it does not exist
 * for the caller (404), whatever a decider would say about it. Null tenant: the caller is the platform.
 */
export async function readTenantStream(store: EventStore, stream: string, tenantId: string | null) {
  const events = await store.readStream(stream)
  if (tenantId === null || events.length === 0 || events[0]!.metadata.tenantId === tenantId) return events
  return []
}

/**
 * Reads another stream a decision depends on (the room a message is posted into), as the tenant may see it.
 * The append is then conditioned on that stream's revision: should it move before the append, the whole
 * decision is taken again on fresh state.
 */
export type DecisionReader = <C2, E2, S2>(decider: Decider<C2, E2, S2>, stream: string) => Promise<S2>

/** A command, or how to build it from the stream's state and the other streams it reads. */
export type CommandInput<C, S> = C | ((state: S, read: DecisionReader) => C | Promise<C>)

const withoutTime = (data: unknown): unknown => {
  if (data === null || typeof data !== 'object' || Array.isArray(data)) return data
  const { at: _at, ...rest } = data as Record<string, unknown>
  return rest
}

/** Whether `events` are what the stream already starts with, the time of the decision aside. */
const alreadyRecorded = (events: readonly DomainEvent[], recorded: readonly RecordedEvent[]): boolean =>
  events.length > 0 &&
  events.length <= recorded.length &&
  events.every((e, i) => e.type === recorded[i]!.type && isDeepStrictEqual(withoutTime(e.data), withoutTime(recorded[i]!.data)))

/**
 * Loads the stream, folds it, decides, and appends at the revision it read, conditioned on the revisions of
 * every other stream the decision read. A concurrent writer to any of them makes the append fail; the whole
 * decision is then taken again on fresh state, a bounded number of times.
 */
export async function handleCommand<C, E extends DomainEvent, S>(
  deps: PipelineDeps,
  decider: Decider<C, E, S>,
  stream: string,
  command: CommandInput<C, S>,
  ctx: CommandContext,
  options: {
    maxAttempts?: number
    /** Reservation streams (names, identities) are shared by every tenant: decide on them whoever wrote them. */
    crossTenant?: boolean
    /**
     * The command creates the stream under an id the client chose: a retry (after a crash, without an
     * Idempotency-Key) that would record what the stream already starts with answers as the first time.
     */
    create?: boolean
  } = {},
): Promise<CommandResult<E, S>> {
  const maxAttempts = options.maxAttempts ?? 5
  for (let attempt = 1; ; attempt++) {
    const recorded = await deps.store.readStream(stream)
    if (!options.crossTenant && ctx.tenantId !== null && recorded.length > 0 && recorded[0]!.metadata.tenantId !== ctx.tenantId) {
      throw new DomainError('NOT_FOUND', 'no such resource', 'not_found')
    }
    const state = foldRecorded(decider, recorded)
    const conditions = new Map<string, ExpectedRevision>()
    const read: DecisionReader = async (other, name) => {
      // A first attempt may decide on the stream as last read here; a refused append reads it afresh.
      const cached = attempt === 1 ? deps.streamCache?.get(name) : undefined
      const events = cached ?? (await deps.store.readStream(name))
      if (!cached) deps.streamCache?.set(name, events)
      conditions.set(name, events.at(-1)?.revision ?? 'no_stream')
      const visible = ctx.tenantId === null || events.length === 0 || events[0]!.metadata.tenantId === ctx.tenantId
      return foldRecorded(other, visible ? events : [])
    }
    const decided =
      typeof command === 'function' ? await (command as (s: S, r: DecisionReader) => C | Promise<C>)(state, read) : command
    if (options.create && recorded.length > 0) {
      const retried = alreadyRecordedAs(decider, decided, recorded)
      if (retried) return { events: [], state, position: retried }
    }
    const events = decider.decide(decided, state)
    const last = recorded[recorded.length - 1]
    if (events.length === 0) return { events, state, position: last?.position ?? null }
    conditions.delete(stream)
    let result: AppendResult
    try {
      result = await deps.store.append(stream, envelope(deps, ctx, events), {
        expectedRevision: last ? last.revision : 'no_stream',
        alsoExpect: [...conditions].map(([name, expectedRevision]) => ({ stream: name, expectedRevision })),
      })
    } catch (e) {
      if (e instanceof WrongExpectedRevisionError) for (const name of conditions.keys()) deps.streamCache?.delete(name)
      if (e instanceof WrongExpectedRevisionError && attempt < maxAttempts) continue
      if (e instanceof WrongExpectedRevisionError) throw new ConcurrencyError(`${e.stream} kept changing: try again`)
      throw e
    }
    deps.streamCache?.delete(stream)
    return { events, state: fold(decider, events, state), position: result.position }
  }
}

/**
 * Where the stream's creation stands when deciding `command` on a new stream would record exactly what the
 * stream starts with; null otherwise (a different create under a taken id, or one refused now).
 */
function alreadyRecordedAs<C, E extends DomainEvent, S>(
  decider: Decider<C, E, S>,
  command: C,
  recorded: readonly RecordedEvent[],
): Position | null {
  let fresh: readonly E[]
  try {
    fresh = decider.decide(command, decider.initialState)
  } catch {
    return null
  }
  return alreadyRecorded(fresh, recorded) ? recorded[fresh.length - 1]!.position : null
}
