import { sql } from 'kysely'
import { comparePositions, type EventStore, type Position } from '../adapters/event-store.ts'
import type { AnyDb } from '../adapters/postgres.ts'
import type { ProjectionEngine, Projector } from './engine.ts'

export class ConsistencyTimeoutError extends Error {
  override readonly name = 'ConsistencyTimeoutError'
}

/**
 * Read-your-writes: waits, bounded, until the named projectors have passed a public position. Reads the
 * checkpoints from Postgres so it holds when projectors run in another process; an in-process engine
 * only makes it answer sooner.
 */
export class ConsistencyWaiter {
  private readonly deps: {
    store: EventStore
    db: AnyDb
    projectors: readonly Projector[]
    engine?: ProjectionEngine | undefined
    timeoutMs: number
  }
  constructor(deps: ConsistencyWaiter['deps']) {
    this.deps = deps
  }

  async waitFor(names: readonly string[], publicPosition: bigint): Promise<void> {
    // Position 0 stands before every event: everything has passed it.
    if (publicPosition === 0n) return
    const deadline = Date.now() + this.deps.timeoutMs
    let target: Position | null = null
    let pause = 2
    while (true) {
      target ??= await this.deps.store.resolvePosition(publicPosition)
      if (target && (this.deps.engine?.reached(names, target) || (await this.reachedInDb(names, target)))) return
      const left = deadline - Date.now()
      if (left <= 0) {
        throw new ConsistencyTimeoutError(
          target ? `read models have not reached position ${publicPosition} yet` : `no event at position ${publicPosition}`,
        )
      }
      await this.nextChange(Math.min(pause, left))
      pause = Math.min(pause * 2, 50)
    }
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
      const row = await sql<{ commit: string; prepare: string }>`
        select commit_position::text as commit, prepare_position::text as prepare
          from ${sql.table(`${p.schema}.projection_checkpoints`)} where name = ${p.name} and version = ${p.version}`
        .execute(this.deps.db)
        .then((r) => r.rows[0])
      if (!row || comparePositions({ commit: BigInt(row.commit), prepare: BigInt(row.prepare) }, target) < 0) return false
    }
    return true
  }
}
