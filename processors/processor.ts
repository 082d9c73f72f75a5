import type { RecordedEvent } from '../adapters/event-store.ts'
import type { Logger } from '../adapters/logger.ts'
import type { DomainEvent } from '../domain/decider.ts'

/** A stored event of a domain union, narrowed on `type` like a decider's evolve. */
export type RecordedOf<E extends DomainEvent> = E extends DomainEvent ? RecordedEvent<E['type'], E['data']> : never

/** A command to run later, by its type (a registered timer handler runs it); persisted as events. */
export type TimerCommand = { readonly type: string; readonly data: Readonly<Record<string, unknown>> }

/** What the runtime gives a handler for one event. */
export type ProcessorContext = {
  readonly logger: Logger
  /**
   * An id derived from (processor, event id, purpose): the same on every repeat of this event, so what the handler
   * appends or sends under it is idempotent (a command's stream id, an email's Message-ID).
   */
  idFor(purpose: string): string
  /** A durable timer: `command` runs once at `at` (or soon after), across processes and restarts; its id is idFor(purpose). */
  schedule(at: Date, command: TimerCommand, purpose: string): Promise<{ timerId: string }>
  /** Cancels a timer scheduled before; a fired or unknown one is left as it is. */
  cancel(timerId: string): Promise<void>
  /** Aborted when the process drains (SIGTERM): a long effect stops and the event is handled again later. */
  readonly signal: AbortSignal
}

/**
 * A reactor with side effects, defined like a projector: the event types it handles (typed against their union),
 * and a handler that performs the effects, idempotent by (processor, event id), and issues commands with ids
 * derived from the event. One runtime (processors/runtime.ts) runs them all: its own subscription and checkpoint,
 * saved after the effect; retries with backoff, then parking; a lease per processor (or per tenant partition).
 */
export type Processor<E extends DomainEvent = DomainEvent> = {
  readonly name: string
  readonly version: number
  readonly eventTypes: readonly E['type'][]
  /** One lease for all its events, or one per tenant (each tenant's events in order, tenants in parallel). */
  readonly partitionBy: 'none' | 'tenant'
  /**
   * Where a processor with no checkpoint yet starts: at the beginning of the history (the default, as projectors
   * do), or at the head when it is first run (a reactor deployed onto a live system must not act on old events).
   */
  readonly startAt?: 'beginning' | 'head'
  handle(event: RecordedOf<E>, ctx: ProcessorContext): Promise<void>
}

/**
 * What the runtime asks of the durable timers (processors/timers.ts implements it): ctx.schedule and ctx.cancel
 * go through it, with the processor and the event that asked (the timer's causation).
 */
export type ProcessorTimers = {
  schedule(request: {
    readonly timerId: string
    readonly at: Date
    readonly command: TimerCommand
    readonly processor: string
    readonly event: RecordedEvent
  }): Promise<{ timerId: string }>
  cancel(timerId: string, from: { readonly processor: string; readonly event: RecordedEvent }): Promise<void>
}
