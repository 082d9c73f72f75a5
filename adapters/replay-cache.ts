/**
 * Replay cache port: remembers single-use values (agent credential signatures, OIDC nonces,
 * handoff tickets) until they expire, so each can be accepted once.
 *
 * `claim` must be atomic: of two concurrent calls with the same key, exactly one returns true.
 */
export interface ReplayCache {
  /** Records `key` until `expiresAtMs` (epoch ms). Returns true if the key was not already recorded and unexpired. */
  claim(key: string, expiresAtMs: number): Promise<boolean>
}

/**
 * In-process replay cache. Right for one process and for tests; several API processes need a
 * shared implementation (Postgres or Redis `SET key NX PX`).
 */
export class MemoryReplayCache implements ReplayCache {
  readonly #entries = new Map<string, number>()
  readonly #now: () => number
  readonly #maxEntries: number
  #claimsSinceSweep = 0

  constructor(options: { now?: () => number; maxEntries?: number } = {}) {
    this.#now = options.now ?? Date.now
    this.#maxEntries = options.maxEntries ?? 100_000
  }

  async claim(key: string, expiresAtMs: number): Promise<boolean> {
    const now = this.#now()
    if (++this.#claimsSinceSweep >= 1_000 || this.#entries.size >= this.#maxEntries) this.#sweep(now)
    const existing = this.#entries.get(key)
    if (existing !== undefined && existing > now) return false
    if (this.#entries.size >= this.#maxEntries) {
      // Refusing is the safe failure: accepting without recording would allow replays.
      throw new Error('replay cache is full')
    }
    this.#entries.set(key, expiresAtMs)
    return true
  }

  get size(): number {
    return this.#entries.size
  }

  #sweep(now: number): void {
    this.#claimsSinceSweep = 0
    for (const [key, expiresAt] of this.#entries) if (expiresAt <= now) this.#entries.delete(key)
  }
}
