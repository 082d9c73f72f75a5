/** At most `limit` holders at once; the others wait in order. */
export class Semaphore {
  private free: number
  private readonly waiting: (() => void)[] = []

  constructor(limit: number) {
    if (!(limit >= 1)) throw new Error('a semaphore needs a limit of at least 1')
    this.free = limit
  }

  /** Resolves with the release function once a turn is free. */
  async acquire(): Promise<() => void> {
    if (this.free > 0) this.free--
    else await new Promise<void>((resolve) => this.waiting.push(resolve))
    let released = false
    return () => {
      if (released) return
      released = true
      const next = this.waiting.shift()
      if (next) next()
      else this.free++
    }
  }
}
