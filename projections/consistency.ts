import { comparePositions, type EventStore, type Position } from '../adapters/event-store.ts'
import { databaseOf, loadCheckpoint, type ProjectionDatabases, type ProjectionEngine, type Projector } from './engine.ts'

export class ConsistencyTimeoutError extends Error {
  override readonly name = 'ConsistencyTimeoutError'
}

/** No event stands at the position: it is beyond the head (or never was one), and waiting would not change that. */
export class UnknownPositionError extends Error {
  override readonly name = 'UnknownPositionError'
}

/** The caller already holds as many waits as one caller may. */
export class TooManyWaitsError extends Error {
  override readonly name = 'TooManyWaitsError'
}

/**
 * Waits one caller may hold at once in this process: each holds a request open and polls the checkpoints, so
 * one caller must not be able to pile them up. A browser's parallel reads after a write stay well below it.
 */
export const MAX_WAITS_PER_CALLER = 8

/**
 * Read-your-writes: waits, bounded, until the named projectors have passed a public position. Reads the
 * checkpoints from Postgres so it holds when projectors run in another process; an in-process engine
 * only makes it answer sooner. A position no event holds is refused at once: every position a client gets
 * (a command's answer, a realtime registration) is of a committed event, so only a made-up one is unknown.
 */
export class ConsistencyWaiter {
  private readonly deps: ProjectionDatabases & {
    store: EventStore
    projectors: readonly Projector[]
    engine?: ProjectionEngine | undefined
    timeoutMs: number
  }
  /** Waits in progress per caller. */
  private readonly waiting = new Map<string, number>()
  constructor(deps: ConsistencyWaiter['deps']) {
    this.deps = deps
  }

  /** `caller` names who waits, for MAX_WAITS_PER_CALLER; the server's own waits name nobody. */
  async waitFor(names: readonly string[], publicPosition: bigint, caller?: string): Promise<void> {
    // Position 0 stands before every event: everything has passed it.
    if (publicPosition === 0n) return
    const deadline = Date.now() + this.deps.timeoutMs
    const target = await this.deps.store.resolvePosition(publicPosition)
    if (!target) throw new UnknownPositionError(`no event at position ${publicPosition}: pass a position a command answered`)
    if (await this.reached(names, target)) return
    const release = this.enter(caller)
    try {
      let pause = 2
      while (true) {
        const left = deadline - Date.now()
        if (left <= 0) throw new ConsistencyTimeoutError(`read models have not reached position ${publicPosition} yet`)
        await this.nextChange(Math.min(pause, left))
        pause = Math.min(pause * 2, 50)
        if (await this.reached(names, target)) return
      }
    } finally {
      release()
    }
  }

  async hasReached(names: readonly string[], publicPosition: bigint): Promise<boolean> {
    if (publicPosition === 0n) return true
    const target = await this.deps.store.resolvePosition(publicPosition)
    return target !== null && (await this.reached(names, target))
  }

  private enter(caller: string | undefined): () => void {
    if (caller === undefined) return () => {}
    const held = this.waiting.get(caller) ?? 0
    if (held >= MAX_WAITS_PER_CALLER) {
      throw new TooManyWaitsError(`at most ${MAX_WAITS_PER_CALLER} reads of one caller wait for consistentAfter at once`)
    }
    this.waiting.set(caller, held + 1)
    return () => {
      const left = this.waiting.get(caller)! - 1
      if (left === 0) this.waiting.delete(caller)
      else this.waiting.set(caller, left)
    }
  }

  private async reached(names: readonly string[], target: Position): Promise<boolean> {
    return this.deps.engine?.reached(names, target) || (await this.reachedInDb(names, target))
  }

  private nextChange(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const off = this.deps.engine?.onCheckpoint(() => done())
      const timer = setTimeout(() => done(), ms)
      const done = () => {
        clearTimeout(timer)
        off?.()
        resolve()
      }
    })
  }

  private async reachedInDb(names: readonly string[], target: Position): Promise<boolean> {
    for (const name of names) {
      const p = this.deps.projectors.find((x) => x.name === name)
      if (!p) throw new Error(`unknown projector ${name}`)
      const checkpoint = await loadCheckpoint(databaseOf(this.deps, p), p, { create: false })
      if (!checkpoint || comparePositions(checkpoint, target) < 0) return false
    }
    return true
  }
}
