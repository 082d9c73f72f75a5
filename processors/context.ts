import { v5 as uuidv5 } from 'uuid'
import type { RecordedEvent } from '../adapters/event-store.ts'
import type { Logger } from '../adapters/logger.ts'
import type { CommandContext } from '../commands/pipeline.ts'
import type { Processor, ProcessorContext, ProcessorTimers } from './processor.ts'

/** The namespace of every id a processor derives (uuid v5): fixed, so ids stay the same across releases. */
const PROCESSOR_IDS = '6d1f3f0e-3c1b-5b7e-9a43-2b0c1e4f7a10'

/** The id a processor derives for one purpose of one event: the same on every repeat, whichever version runs. */
export const processorIdFor = (processor: string, eventId: string, purpose: string): string =>
  uuidv5(`${processor}\n${eventId}\n${purpose}`, PROCESSOR_IDS)

/** Until a timers implementation is given: a processor that schedules fails (and parks) rather than drop the timer. */
export const noTimers: ProcessorTimers = {
  async schedule() {
    throw new Error('no timers configured: pass `timers` to startProcessors')
  },
  async cancel() {
    throw new Error('no timers configured: pass `timers` to startProcessors')
  },
}

/** What a handler is given for one event. */
export function processorContext(
  p: Pick<Processor, 'name' | 'version'>,
  event: RecordedEvent,
  deps: { readonly logger: Logger; readonly timers: ProcessorTimers; readonly signal: AbortSignal },
): ProcessorContext {
  const idFor = (purpose: string) => processorIdFor(p.name, event.id, purpose)
  let logger: Logger | null = null
  return {
    // Made on first use: most events are handled without a word logged.
    get logger() {
      logger ??= deps.logger.child({ processor: p.name, version: p.version, eventId: event.id, type: event.type })
      return logger
    },
    idFor,
    schedule: (at, command, purpose) => deps.timers.schedule({ timerId: idFor(purpose), at, command, processor: p.name, event }),
    cancel: (timerId) => deps.timers.cancel(timerId, { processor: p.name, event }),
    signal: deps.signal,
  }
}

/**
 * The context of the commands a handler issues for one event: caused by it, in its tenant and correlation, as
 * the processor; its ids derived from the event, so that a repeat decides with the same ids.
 */
export function commandContextFor(processor: string, event: RecordedEvent, ctx: Pick<ProcessorContext, 'idFor'>): CommandContext {
  let n = 0
  return {
    tenantId: event.metadata.tenantId,
    actor: { type: 'system', id: `processor:${processor}` },
    correlationId: event.metadata.correlationId,
    causationId: event.id,
    now: () => new Date(),
    newId: () => ctx.idFor(`id:${n++}`),
  }
}
