import type pg from 'pg'

export type PgListenerOptions = {
  /** The channel to LISTEN on (an identifier of ours, never user input). */
  readonly channel: string
  /** Each notification on the channel. */
  readonly onNotification: (payload: string | undefined) => void
  /**
   * The listening connection broke (it is already forgotten and released): notifications may have been missed.
   * The next `listen()` takes a new connection.
   */
  readonly onLost?: () => void
  /**
   * The connection's application_name (operators and tests find it by this). A connection renamed so is
   * destroyed at close rather than handed back to the pool.
   */
  readonly applicationName?: string
}

/**
 * One LISTEN connection taken from the pool for good. `listen()` connects once (concurrent callers share the
 * attempt; a failed attempt is forgotten, so the next call tries again). The subtle bits:
 * - a LISTEN that fails releases its connection (destroyed: its state is unknown);
 * - a broken connection can report more than once ('error', then 'end'), and close() may have released it
 *   already: only the holder, the connection currently listening, is forgotten and released, once;
 * - a connection that arrives after close() is released at once.
 */
export class PgListener {
  private holder: pg.PoolClient | null = null
  private listening: Promise<void> | null = null
  private closed = false
  private readonly pool: pg.Pool
  private readonly options: PgListenerOptions

  constructor(pool: pg.Pool, options: PgListenerOptions) {
    this.pool = pool
    this.options = options
  }

  /** Resolves once the connection listens (at once when it already does, or after close). */
  listen(): Promise<void> {
    if (this.closed) return Promise.resolve()
    this.listening ??= this.connect().catch((e) => {
      this.listening = null
      throw e
    })
    return this.listening
  }

  private async connect(): Promise<void> {
    const { channel, applicationName } = this.options
    const client = await this.pool.connect()
    // Handlers first: a connection that breaks during LISTEN must not throw an unhandled 'error'.
    client.on('notification', (n) => {
      if (n.channel === channel) this.options.onNotification(n.payload)
    })
    client.on('error', () => this.lost(client))
    client.on('end', () => this.lost(client))
    try {
      if (applicationName) await client.query(`set application_name = '${applicationName}'`)
      await client.query(`listen ${channel}`)
    } catch (e) {
      client.release(true)
      throw e
    }
    this.holder = client
    if (this.closed) this.drop(client)
  }

  /** The connection broke: the holder forgets and releases it, once; another connection's reports are ignored. */
  private lost(client: pg.PoolClient): void {
    if (this.holder !== client) return
    this.drop(client)
    if (!this.closed) this.options.onLost?.()
  }

  private drop(client: pg.PoolClient): void {
    if (this.holder !== client) return
    this.holder = null
    this.listening = null
    try {
      client.release(true)
    } catch {
      // Already released.
    }
  }

  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    await this.listening?.catch(() => {})
    const l = this.holder
    this.holder = null
    this.listening = null
    if (l) {
      await l.query(`unlisten ${this.options.channel}`).catch(() => {})
      l.release(this.options.applicationName !== undefined)
    }
  }
}
