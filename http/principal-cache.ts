import { setTimeout as sleep } from 'node:timers/promises'
import { LRUCache } from 'lru-cache'
import type { EventStore, Position, RecordedEvent, Subscription } from '../adapters/event-store.ts'
import type { Logger } from '../adapters/logger.ts'
import type { Claimed, Principal } from './principal.ts'

/*
 * Authentication once per credential, not per request: what a Tenant API credential resolved to (its claim, the
 * org's user, the org's status), kept per process for a few seconds. Every process follows the events that change
 * an answer — a credential revoked (logout, revocation), a user's role, username or status changed, an org
 * suspended or reactivated — and forgets the entries they touch as soon as it reads them: within milliseconds
 * of the commit, and never later than the TTL (the bound when the subscription lags or is down).
 */

/** Event types after which a cached answer may be wrong. */
const invalidating = new Set<string>([
  'credential.revoked',
  'user.role_changed',
  'user.activated',
  'user.deactivated',
  'user.erased',
  'org.suspended',
  'org.reactivated',
])

export type CachedAuthentication = {
  readonly claimed: Claimed
  readonly principal: Principal
  readonly orgStatus: string
}

export type PrincipalCacheOptions = {
  /** How long an entry is used without a fresh check, at most: the bound on a change the subscription missed. */
  readonly ttlMs: number
  readonly max?: number
}

export class PrincipalCache {
  private readonly entries: LRUCache<string, CachedAuthentication>
  private subscription: Subscription | null = null
  private following: Promise<void> | null = null
  private readonly stopping = new AbortController()
  /** True while the subscription runs live: an entry is only used while changes can reach it. */
  private live = false
  /**
   * What changed within the TTL (credentials, users, orgs), at which public position. An answer computed around a
   * change may predate it, read before the event or from read models still behind it (the subscription can hear of
   * an event before the projector applies it): the next authentication waits for the read models to reach the
   * change (changeFor), and an answer computed while any change came is not stored (generation).
   */
  private readonly changed: LRUCache<string, bigint>

  private readonly deps: { store: EventStore; logger: Logger }

  constructor(deps: { store: EventStore; logger: Logger }, options: PrincipalCacheOptions) {
    this.deps = deps
    this.entries = new LRUCache({ max: options.max ?? 50_000, ttl: Math.max(1, options.ttlMs), ttlAutopurge: false })
    this.changed = new LRUCache({ max: 100_000, ttl: Math.max(1, options.ttlMs), ttlAutopurge: false })
    this.enabled = options.ttlMs > 0
  }

  /** A TTL of 0 turns the cache off: every request authenticates afresh. */
  private readonly enabled: boolean

  /**
   * Follows the store from its head: entries made from now on are forgotten when an event changes them. `store` is
   * the adapter itself, undecorated: the ids these events carry are no personal data, and nothing else is read.
   */
  async start(): Promise<void> {
    if (!this.enabled) return
    this.following = this.follow(await this.deps.store.headPosition())
  }

  /**
   * Reads the changes until closed. When the subscription fails, the cache is off (emptied, nothing answered from
   * it) until it runs again, from where it stopped, after a backoff.
   */
  private async follow(from: Position): Promise<void> {
    let failures = 0
    while (!this.stopping.signal.aborted) {
      const subscription = this.deps.store.subscribeAll({ from, maxBatch: 5_000 })
      this.subscription = subscription
      this.live = true
      try {
        for await (const batch of subscription) {
          failures = 0
          for (const e of batch) if (invalidating.has(e.type)) this.forget(e, e.position)
          from = batch.at(-1)?.position ?? from
        }
      } catch (e) {
        failures++
        this.deps.logger.warn(
          { err: e, failures },
          'the principal cache lost the changes it follows: off until it follows them again',
        )
      } finally {
        this.live = false
        this.entries.clear()
      }
      await sleep(Math.min(10_000, 250 * 2 ** Math.min(failures, 6)), undefined, { signal: this.stopping.signal }).catch(() => {})
    }
  }

  /** Lookups answered from the cache, and the ones that were not (while it follows changes): for /metrics. */
  readonly lookups = { hit: 0, miss: 0 }

  get(key: string): CachedAuthentication | undefined {
    if (!this.live) return undefined
    const entry = this.entries.get(key)
    if (entry) this.lookups.hit++
    else this.lookups.miss++
    return entry
  }

  /** The newest change (its public position) to what a credential names, if one came within the TTL. */
  changeFor(claimed: Pick<CachedAuthentication['claimed'], 'tenantId' | 'userId' | 'credentialIds'>): bigint | null {
    let newest: bigint | null = null
    for (const k of changeKeys(claimed)) {
      const at = this.changed.get(k)
      if (at !== undefined && (newest === null || at > newest)) newest = at
    }
    return newest
  }

  /** Changes heard so far: take it before authenticating afresh, and hand it to `set`. */
  generation = 0

  /** Stores an answer, unless a change came since `generation` was taken (the answer may predate it). */
  set(key: string, entry: CachedAuthentication, expiresAt: Date | null, generation: number): void {
    if (!this.live || generation !== this.generation) return
    // Never past the credential's own end.
    const left = expiresAt ? expiresAt.getTime() - Date.now() : Number.POSITIVE_INFINITY
    if (left <= 0) return
    this.entries.set(key, entry, Number.isFinite(left) ? { ttl: Math.min(left, this.entries.ttl) } : {})
  }

  /**
   * The store as commands use it, telling this cache of what this process appends the moment it commits: a
   * request after a logout or a role change here sees it, without waiting for the subscription.
   */
  watching(store: EventStore): EventStore {
    return {
      ...bound(store),
      append: async (stream, events, options) => {
        const result = await store.append(stream, events, options)
        for (const e of events) if (invalidating.has(e.type)) this.forget(e, result.position)
        return result
      },
    }
  }

  /** Drops the entries an event may have made wrong. Rare events, a bounded cache: a scan is cheap enough. */
  forget(event: Pick<RecordedEvent, 'type' | 'data' | 'metadata'>, at: Position): void {
    const data = event.data as { credentialId?: string; userId?: string; orgId?: string }
    const tenantId = event.metadata.tenantId ?? data.orgId ?? ''
    const changed =
      event.type === 'credential.revoked'
        ? `credential:${data.credentialId}`
        : event.type === 'org.suspended' || event.type === 'org.reactivated'
          ? `org:${tenantId}`
          : `user:${tenantId}:${data.userId}`
    this.generation++
    this.changed.set(changed, at.sequence)
    for (const [key, entry] of this.entries.entries()) if (changeKeys(entry.claimed).includes(changed)) this.entries.delete(key)
  }

  get size(): number {
    return this.entries.size
  }

  async close(): Promise<void> {
    this.stopping.abort()
    await this.subscription?.close()
    await this.following
  }
}

/** The changes that end an answer: its credentials', its user's, its org's. */
const changeKeys = (claimed: Pick<CachedAuthentication['claimed'], 'tenantId' | 'userId' | 'credentialIds'>): string[] => [
  ...claimed.credentialIds.map((id) => `credential:${id}`),
  `user:${claimed.tenantId}:${claimed.userId}`,
  `org:${claimed.tenantId}`,
]

/** Every method of a store, bound to it: a decorator replaces some and passes the rest through. */
const bound = (store: EventStore): EventStore => ({
  append: store.append.bind(store),
  readStream: store.readStream.bind(store),
  readAll: store.readAll.bind(store),
  readTenant: store.readTenant.bind(store),
  subscribeAll: store.subscribeAll.bind(store),
  headPosition: store.headPosition.bind(store),
  resolvePosition: store.resolvePosition.bind(store),
  close: store.close.bind(store),
})
