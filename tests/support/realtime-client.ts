import { setTimeout as sleep } from 'node:timers/promises'
import { sql } from 'kysely'
import { comparePositions, type EventStore, type RecordedEvent } from '../../adapters/event-store.ts'
import type { AnyDb } from '../../adapters/postgres.ts'
import type { UserEvent } from '../../adapters/user-streams.ts'
import { BadEventQueueIdError, type RealtimeGateway } from '../../realtime/gateway.ts'

/**
 * The state a client loads with `consistentAfter=position`: what it may see of every event up to that place in
 * the global order (the event at that position and all that sort before it, by transaction, then position).
 */
export async function stateAt<T>(store: EventStore, position: number, seen: (e: RecordedEvent) => T | null): Promise<T[]> {
  if (position === 0) return []
  const at = await store.resolvePosition(BigInt(position))
  if (!at) throw new Error(`no event at position ${position}`)
  const out: T[] = []
  for (const e of await store.readAll({ maxCount: 1_000_000 })) {
    if (comparePositions(e.position, at) > 0) continue
    const item = seen(e)
    if (item !== null) out.push(item)
  }
  return out
}

/** Resolves once the fan-out's outbox is empty: every delivery it recorded is in the user streams. */
export async function outboxDrained(db: AnyDb, timeoutMs = 10_000): Promise<void> {
  const until = Date.now() + timeoutMs
  for (;;) {
    const { rows } = await sql<{ n: number }>`select count(*)::int as n from realtime.outbox`.execute(db)
    if (rows[0]!.n === 0) return
    if (Date.now() > until) throw new Error(`${rows[0]!.n} realtime deliveries still pending`)
    await sleep(10)
  }
}

export type RealtimeClientOptions<T> = {
  readonly gateway: RealtimeGateway
  readonly userId: string
  readonly eventTypes?: readonly string[]
  /** The state loaded at a registration's position. */
  readonly loadState: (position: number) => Promise<T[]>
  /** What the client keeps of a polled event. */
  readonly keep: (e: UserEvent) => T
}

/**
 * A client as API.md describes it: register, load state at the registration's position, poll from its
 * lastEventId, and on BAD_EVENT_QUEUE_ID register again; other failures (the backend away) are retried.
 */
export class RealtimeClient<T> {
  /** One sequence per registration: the state loaded at its position, then every event polled since. */
  readonly epochs: T[][] = []
  /** A paused client holds its queue but does not poll (a slow client). */
  paused = false
  private stopped = false
  private readonly loop: Promise<void>
  private readonly options: RealtimeClientOptions<T>

  constructor(options: RealtimeClientOptions<T>) {
    this.options = options
    this.loop = this.run()
  }

  /** What the client holds now (the latest registration's sequence). */
  get known(): readonly T[] {
    return this.epochs.at(-1) ?? []
  }

  private async run(): Promise<void> {
    const { gateway, userId, eventTypes, loadState, keep } = this.options
    let queue: { queueId: string } | null = null
    let cursor = ''
    while (!this.stopped) {
      try {
        if (!queue) {
          const r = await gateway.register(userId, eventTypes ?? null)
          this.epochs.push(await loadState(r.position))
          queue = r
          cursor = r.lastEventId
        }
        if (this.paused) {
          await sleep(10)
          continue
        }
        const r = await gateway.poll({ queueId: queue.queueId, userId, lastEventId: cursor })
        if (r.type === 'events' && r.events.length) {
          this.epochs.at(-1)!.push(...r.events.map(keep))
          cursor = r.events.at(-1)!.id
        }
      } catch (e) {
        if (e instanceof BadEventQueueIdError) queue = null
        else await sleep(20)
      }
    }
  }

  async stop(): Promise<void> {
    this.stopped = true
    await this.loop
  }
}
