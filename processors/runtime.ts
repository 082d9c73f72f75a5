import { randomUUID } from 'node:crypto'
import { hostname } from 'node:os'
import { setTimeout as sleep } from 'node:timers/promises'
import { retryDelayMs } from '../adapters/backoff.ts'
import { type EventStore, formatPosition, type Position, type RecordedEvent, type Subscription } from '../adapters/event-store.ts'
import { acquireLease, countLiveHolders, type Lease, releaseLease, renewLease } from '../adapters/leases.ts'
import type { Logger } from '../adapters/logger.ts'
import { park } from '../adapters/parked-events.ts'
import type { AnyDb } from '../adapters/postgres.ts'
import {
  type CheckpointKey,
  LeaseLostError,
  loadProcessorCheckpoint,
  saveProcessorCheckpoint,
} from '../adapters/processor-checkpoints.ts'
import { isTransient } from '../adapters/transient.ts'
import { noTimers, processorContext } from './context.ts'
import { type ProcessorPartition, partitionsOf } from './partitions.ts'
import type { Processor, ProcessorTimers } from './processor.ts'
import { Semaphore } from './semaphore.ts'

export type ProcessorRuntimeOptions = {
  /** Who holds the leases this process takes: unique per process (a restarted process is a new holder). */
  readonly holder?: string
  /** How long a lease lasts unless renewed, by the database's clock. */
  readonly leaseTtlMs?: number
  /** How often a held lease is renewed, and a free one looked for. */
  readonly renewMs?: number
  /** Tenant partitions of a processor partitioned by tenant: each tenant's events go to one, by a hash of its id. */
  readonly tenantPartitions?: number
  /** Partitions this process handles at once (the others it holds wait for a turn). */
  readonly maxConcurrency?: number
  readonly batchSize?: number
  /** The wait after a first failure; each failure in a row doubles it (with jitter), up to maxRetryMs. */
  readonly retryMs?: number
  readonly maxRetryMs?: number
  /** Failures of a handler on one event before it is parked. Failures of backing services never count. */
  readonly maxAttempts?: number
  /** How long stop() lets effects in flight finish before aborting them through ctx.signal. */
  readonly drainMs?: number
  /**
   * Share the partitions among the processes running processors (default true): each announces itself with a lease
   * of its own, takes partitions only up to its fair share, and hands over (after its batch, checkpoint saved) those
   * beyond it when more processes join.
   */
  readonly balance?: boolean
}

export type ProcessorRuntimeDeps = {
  readonly store: EventStore
  /** Checkpoints, leases and parked events (the control database). */
  readonly controlDb: AnyDb
  readonly logger: Logger
  readonly processors: readonly Processor[]
  /** ctx.schedule and ctx.cancel (processors/timers.ts); without it they fail, and the event parks. */
  readonly timers?: ProcessorTimers
  readonly options?: ProcessorRuntimeOptions
}

export type ProcessorPartitionStatus = {
  readonly name: string
  readonly version: number
  readonly partition: string
  /** Whether this process holds the partition's lease now. */
  readonly held: boolean
  readonly generation: bigint | null
  /** Where this process last saved the checkpoint (null: it never held the partition). */
  readonly checkpoint: Position | null
  /** Events this process's handler went through (parked ones not counted) since it started. */
  readonly eventsHandled: number
  /** Failed attempts of the handler, retried or parked, since it started. */
  readonly failures: number
  /** Events this process parked since it started. */
  readonly parked: number
  readonly lastEventAt: Date | null
}

export type ProcessorRuntime = {
  /** Stops taking events, lets effects in flight finish (aborting them after drainMs), releases the leases. */
  stop(): Promise<void>
  statuses(): ProcessorPartitionStatus[]
  /** The lease holder this process is. */
  readonly holder: string
}

type Slot = ProcessorPartition & {
  status: ProcessorPartitionStatus
  subscription: Subscription | null
  /** Aborted when the lease is lost or the drain runs out of time: what ctx.signal follows. */
  effects: AbortController | null
}

/** The lease each runtime holds while it runs, one per process: how many share the partitions. */
const MEMBERS = '~processors'

/** Aborted because another process may hold the lease now: nothing more may be saved under it. */
const leaseLost = (signal: AbortSignal): boolean => signal.aborted && signal.reason instanceof LeaseLostError

/**
 * Runs every processor: each partition (the whole processor, or one tenant partition of it) is handled by the one
 * process that holds its lease, through its own subscription from its own checkpoint, saved after the effects (at
 * least once: a crash before the save repeats them, and handlers are idempotent by ctx.idFor). A handler that
 * keeps failing on an event has it parked (control.parked_events, kind 'processor') and goes on.
 */
export function startProcessors(deps: ProcessorRuntimeDeps): ProcessorRuntime {
  const o = deps.options ?? {}
  const options = {
    holder: o.holder ?? `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`,
    leaseTtlMs: o.leaseTtlMs ?? 10_000,
    renewMs: o.renewMs ?? 2_000,
    tenantPartitions: o.tenantPartitions ?? 8,
    maxConcurrency: o.maxConcurrency ?? 4,
    batchSize: o.batchSize ?? 200,
    retryMs: o.retryMs ?? 200,
    maxRetryMs: o.maxRetryMs ?? 10_000,
    maxAttempts: o.maxAttempts ?? 5,
    drainMs: o.drainMs ?? 5_000,
    balance: o.balance ?? true,
  }
  if (options.renewMs >= options.leaseTtlMs) throw new Error('processors: renewMs must be shorter than leaseTtlMs')
  const timers = deps.timers ?? noTimers
  const db = deps.controlDb
  const stopping = new AbortController()
  const turns = new Semaphore(options.maxConcurrency)
  const slots: Slot[] = deps.processors.flatMap((p) =>
    partitionsOf(p, options.tenantPartitions).map((part) => ({
      ...part,
      subscription: null,
      effects: null,
      status: {
        name: p.name,
        version: p.version,
        partition: part.partition,
        held: false,
        generation: null,
        checkpoint: null,
        eventsHandled: 0,
        failures: 0,
        parked: 0,
        lastEventAt: null,
      },
    })),
  )

  /** Waits, or returns at once when the runtime stops. */
  const pause = (ms: number) => sleep(ms, undefined, { signal: stopping.signal }).catch(() => {})

  // --- balance: the processes running processors, as they announce themselves, and this one's fair share

  let members = 1
  const fairShare = () => (options.balance ? Math.ceil(slots.length / members) : slots.length)
  const heldSlots = () => slots.filter((s) => s.status.held)

  async function announce(): Promise<void> {
    const me = { name: MEMBERS, partition: options.holder }
    let lease: Lease | null = null
    while (!stopping.signal.aborted) {
      try {
        lease = await acquireLease(db, me, options.holder, options.leaseTtlMs)
        members = Math.max(1, await countLiveHolders(db, MEMBERS))
      } catch (e) {
        deps.logger.warn({ err: e }, 'processors: could not announce this process')
      }
      await pause(options.renewMs)
    }
    if (lease) await releaseLease(db, lease).catch(() => {})
  }

  async function run(slot: Slot): Promise<void> {
    const log = deps.logger.child({ processor: slot.processor.name, partition: slot.partition, holder: options.holder })
    let failures = 0
    while (!stopping.signal.aborted) {
      try {
        if (heldSlots().length >= fairShare()) {
          await pause(options.renewMs)
          continue
        }
        const lease = await acquireLease(
          db,
          { name: slot.processor.name, partition: slot.partition },
          options.holder,
          options.leaseTtlMs,
        )
        if (!lease) {
          await pause(options.renewMs)
          continue
        }
        log.info({ generation: lease.generation.toString() }, 'processor partition taken')
        const handedOver = await hold(slot, lease, log)
        failures = 0
        // Leave it to the process that has fewer than its share for a while.
        if (handedOver) await pause(options.leaseTtlMs)
      } catch (e) {
        if (stopping.signal.aborted) return
        if (e instanceof LeaseLostError) {
          // Another process may hold it now: look for it again like any free partition, no backoff.
          await pause(options.renewMs)
          continue
        }
        failures++
        const waitMs = retryDelayMs(failures, options.retryMs, options.maxRetryMs)
        log.error({ err: e, failures, retryInMs: Math.round(waitMs) }, 'processor partition failed; taking it up again')
        await pause(waitMs)
      }
    }
  }

  /**
   * Handles the partition while the lease holds and the runtime runs; renews the lease meanwhile. True when it
   * handed the partition over (more than this process's share).
   */
  async function hold(slot: Slot, lease: Lease, log: Logger): Promise<boolean> {
    const effects = new AbortController()
    /** Stop taking events, save the checkpoint and release: another process is to take it. */
    const handing = new AbortController()
    slot.effects = effects
    slot.status = { ...slot.status, held: true, generation: lease.generation }
    // The lease lasts leaseTtlMs from when the database granted it, which is after we asked: stopping at our own
    // asking time + TTL (less a margin for clock drift) stops before any other process may take over.
    const margin = Math.min(1_000, options.leaseTtlMs / 10)
    let deadline: NodeJS.Timeout | undefined
    const lost = (why: string) => {
      if (effects.signal.aborted) return
      log.warn({ generation: lease.generation.toString() }, `processor lease lost (${why}): stopping this partition`)
      effects.abort(new LeaseLostError(why))
      void slot.subscription?.close().catch(() => {})
    }
    const armDeadline = (askedAt: number) => {
      clearTimeout(deadline)
      deadline = setTimeout(() => lost('not renewed in time'), Math.max(0, askedAt + options.leaseTtlMs - margin - Date.now()))
    }
    armDeadline(Date.now() - options.renewMs) // conservatively: the acquisition was asked before now
    let renewing = false
    const renewal = setInterval(async () => {
      if (renewing || effects.signal.aborted) return
      renewing = true
      const askedAt = Date.now()
      try {
        if (await renewLease(db, lease, options.leaseTtlMs)) armDeadline(askedAt)
        else lost('taken over or expired')
        const held = heldSlots()
        if (held.length > fairShare() && held.at(-1) === slot && !handing.signal.aborted) {
          log.info({ members, share: fairShare() }, "handing this partition over: more than this process's share")
          handing.abort()
          void slot.subscription?.close().catch(() => {})
        }
      } catch (e) {
        // The deadline still stands: a database out for longer than the TTL ends the hold.
        log.warn({ err: e }, 'processor lease renewal failed')
      } finally {
        renewing = false
      }
    }, options.renewMs)
    try {
      await handlePartition(slot, lease, effects.signal, AbortSignal.any([stopping.signal, handing.signal]), log)
      return handing.signal.aborted
    } finally {
      clearInterval(renewal)
      clearTimeout(deadline)
      slot.effects = null
      slot.status = { ...slot.status, held: false }
      await slot.subscription?.close().catch(() => {})
      slot.subscription = null
      if (!leaseLost(effects.signal)) await releaseLease(db, lease).catch((e) => log.warn({ err: e }, 'lease release failed'))
    }
  }

  /** `signal`: stop now (ctx.signal, lease lost or drain over); `quit`: stop taking events (the runtime stops, a hand-over). */
  async function handlePartition(slot: Slot, lease: Lease, signal: AbortSignal, quit: AbortSignal, log: Logger): Promise<void> {
    const p = slot.processor
    const key: CheckpointKey = { name: p.name, version: p.version, partition: slot.partition }
    let saved = await loadProcessorCheckpoint(db, key, async () =>
      p.startAt === 'head' ? deps.store.headPosition() : { transactionId: 0n, sequence: 0n },
    )
    slot.status = { ...slot.status, checkpoint: saved }
    const subscription = deps.store.subscribeAll({ from: saved, maxBatch: options.batchSize })
    slot.subscription = subscription
    if (quit.aborted || signal.aborted) await subscription.close()
    for await (const batch of subscription) {
      if (quit.aborted || signal.aborted) break
      const release = await turns.acquire()
      let done = saved
      try {
        for (const event of batch) {
          if (quit.aborted || signal.aborted) break
          if (slot.accepts(event)) {
            const outcome = await handleWithRetries(slot, lease, event, signal, quit, log)
            if (outcome === 'aborted') break
          }
          done = event.position
        }
      } finally {
        release()
      }
      if (done !== saved && !leaseLost(signal)) {
        await saveProcessorCheckpoint(db, key, lease, done)
        saved = done
        slot.status = { ...slot.status, checkpoint: saved }
      }
    }
    if (leaseLost(signal)) throw signal.reason
  }

  /** Handles one event, retrying with backoff; parks it (moving the checkpoint past it) after maxAttempts. */
  async function handleWithRetries(
    slot: Slot,
    lease: Lease,
    event: RecordedEvent,
    signal: AbortSignal,
    quit: AbortSignal,
    log: Logger,
  ): Promise<'handled' | 'parked' | 'aborted'> {
    const p = slot.processor
    let attempts = 0
    let failures = 0
    for (;;) {
      try {
        await p.handle(event as never, processorContext(p, event, { logger: deps.logger, timers, signal }))
        slot.status = { ...slot.status, eventsHandled: slot.status.eventsHandled + 1, lastEventAt: new Date() }
        return 'handled'
      } catch (e) {
        if (signal.aborted) return 'aborted'
        failures++
        if (!isTransient(e)) attempts++
        slot.status = { ...slot.status, failures: slot.status.failures + 1 }
        if (attempts >= options.maxAttempts) {
          await parkAndPass(slot, lease, event, e)
          log.error(
            { err: e, eventId: event.id, position: formatPosition(event.position), type: event.type, attempts },
            'event parked: the processor failed on it every attempt; it goes on with the events after it',
          )
          return 'parked'
        }
        const waitMs = retryDelayMs(failures, options.retryMs, options.maxRetryMs)
        log.warn({ err: e, eventId: event.id, attempts, retryInMs: Math.round(waitMs) }, 'processor failed on an event; retrying')
        // A drain or hand-over does not wait out the backoff: the event is handled again by the next holder.
        const waited = await sleep(waitMs, true, { signal: AbortSignal.any([signal, quit]) }).catch(() => false)
        if (!waited) return 'aborted'
      }
    }
  }

  /** Parks the event and moves the checkpoint onto it in one transaction, fenced by the lease like every save. */
  async function parkAndPass(slot: Slot, lease: Lease, event: RecordedEvent, error: unknown): Promise<void> {
    const p = slot.processor
    await db.transaction().execute(async (trx) => {
      await park(trx, { kind: 'processor', name: p.name, version: p.version }, event, error, options.maxAttempts)
      await saveProcessorCheckpoint(trx, { name: p.name, version: p.version, partition: slot.partition }, lease, event.position)
    })
    slot.status = { ...slot.status, parked: slot.status.parked + 1, checkpoint: event.position }
  }

  const loops = [announce(), ...slots.map((s) => run(s))]

  return {
    holder: options.holder,
    statuses: () => slots.map((s) => s.status),
    async stop() {
      if (stopping.signal.aborted) return
      stopping.abort()
      // Partitions waiting for events stop at once; those handling one finish it, up to drainMs.
      await Promise.all(slots.map((s) => s.subscription?.close().catch(() => {})))
      const drained = Promise.allSettled(loops)
      const late = await Promise.race([drained.then(() => false), sleep(options.drainMs, true)])
      if (late) {
        deps.logger.warn({ drainMs: options.drainMs }, 'processors: effects still in flight after the drain time: aborting them')
        for (const s of slots) s.effects?.abort(new Error('the runtime stopped'))
      }
      await drained
    },
  }
}
