/**
 * Group commit: at most `maxInFlight` jobs (transactions) run at a time; a job that arrives while they all
 * run waits, and those that waited go together as one group when one ends. A lone caller never waits and
 * never groups, so grouping costs nothing when there is no queue; under load it turns many commits into one.
 */

/** What became of one member of a group: its value, or the error that member alone failed with. */
export type Settled<R> = { readonly ok: true; readonly value: R } | { readonly ok: false; readonly error: unknown }

export type GroupCommitOptions = {
  /** Jobs run at once (one connection each); more wait and then go as groups. */
  readonly maxInFlight: number
  /** The most jobs in one group. */
  readonly maxGroup: number
}

type Waiting<J, R> = { job: J; resolve: (r: R) => void; reject: (e: unknown) => void }

export class GroupCommit<J, R> {
  private readonly runOne: (job: J) => Promise<R>
  private readonly runGroup: (jobs: readonly J[]) => Promise<readonly Settled<R>[]>
  private readonly maxInFlight: number
  private readonly maxGroup: number
  private inFlight = 0
  private readonly queue: Waiting<J, R>[] = []

  /**
   * runGroup answers one Settled per job, in order; if it throws, every member of that group fails with
   * its error.
   */
  constructor(
    runOne: (job: J) => Promise<R>,
    runGroup: (jobs: readonly J[]) => Promise<readonly Settled<R>[]>,
    options: GroupCommitOptions,
  ) {
    if (!(options.maxInFlight >= 1) || !(options.maxGroup >= 1)) throw new Error('maxInFlight and maxGroup must be >= 1')
    this.runOne = runOne
    this.runGroup = runGroup
    this.maxInFlight = options.maxInFlight
    this.maxGroup = options.maxGroup
  }

  submit(job: J): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.queue.push({ job, resolve, reject })
      this.drain()
    })
  }

  private drain(): void {
    while (this.inFlight < this.maxInFlight && this.queue.length > 0) {
      const members = this.queue.splice(0, this.maxGroup)
      this.inFlight++
      const ran = members.length === 1 ? this.one(members[0]!) : this.group(members)
      // The slot is handed on only after the callers this job answered had their turn: a caller that appends
      // again at once (a writer's next append) queues with the others instead of taking the free slot alone.
      void ran.finally(() =>
        setImmediate(() => {
          this.inFlight--
          this.drain()
        }),
      )
    }
  }

  private one(member: Waiting<J, R>): Promise<void> {
    return this.runOne(member.job).then(member.resolve, member.reject)
  }

  private async group(members: Waiting<J, R>[]): Promise<void> {
    let settled: readonly Settled<R>[]
    try {
      settled = await this.runGroup(members.map((m) => m.job))
    } catch (e) {
      for (const m of members) m.reject(e)
      return
    }
    members.forEach((m, i) => {
      const s = settled[i]
      if (!s) m.reject(new Error('group commit: no result for this member'))
      else if (s.ok) m.resolve(s.value)
      else m.reject(s.error)
    })
  }
}
