import { LRUCache } from 'lru-cache'
import type { EventStore, RecordedEvent, Subscription } from '../adapters/event-store.ts'
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
  /** True while the subscription runs live: an entry is only used while changes can reach it. */
  private live = false
  /**
   * What changed within the TTL (credentials, users, orgs), and is not cached again until it passes: an answer
   * computed around the change may predate it, read before the event or from read models still behind it (the
   * subscription can hear of an event before the projector applies it), and would otherwise live a whole TTL.
   */
  private readonly changed: LRUCache<string, true>

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
    const head = await this.deps.store.headPosition()
    this.subscription = this.deps.store.subscribeAll({ from: head, maxBatch: 5_000 })
    this.live = true
    this.following = this.follow(this.subscription)
  }

  private async follow(subscription: Subscription): Promise<void> {
    try {
      for await (const batch of subscription) for (const e of batch) if (invalidating.has(e.type)) this.forget(e)
    } catch (e) {
      this.deps.logger.warn({ err: e }, 'the principal cache stopped following changes: every request authenticates afresh')
    } finally {
      this.live = false
      this.entries.clear()
    }
  }

  get(key: string): CachedAuthentication | undefined {
    if (!this.live) return undefined
    return this.entries.get(key)
  }

  set(key: string, entry: CachedAuthentication, expiresAt: Date | null): void {
    if (!this.live || changeKeysOf(entry).some((k) => this.changed.has(k))) return
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
        for (const e of events) if (invalidating.has(e.type)) this.forget(e)
        return result
      },
    }
  }

  /** Drops the entries an event may have made wrong. Rare events, a bounded cache: a scan is cheap enough. */
  forget(event: Pick<RecordedEvent, 'type' | 'data' | 'metadata'>): void {
    const data = event.data as { credentialId?: string; userId?: string; orgId?: string }
    const tenantId = event.metadata.tenantId ?? data.orgId ?? ''
    const changed =
      event.type === 'credential.revoked'
        ? `credential:${data.credentialId}`
        : event.type === 'org.suspended' || event.type === 'org.reactivated'
          ? `org:${tenantId}`
          : `user:${tenantId}:${data.userId}`
    this.changed.set(changed, true)
    for (const [key, entry] of this.entries.entries()) if (changeKeysOf(entry).includes(changed)) this.entries.delete(key)
  }

  get size(): number {
    return this.entries.size
  }

  async close(): Promise<void> {
    await this.subscription?.close()
    await this.following
  }
}

/** The changes that end an entry: its credentials', its user's, its org's. */
const changeKeysOf = (entry: CachedAuthentication): string[] => [
  ...entry.claimed.credentialIds.map((id) => `credential:${id}`),
  `user:${entry.principal.tenantId}:${entry.principal.userId}`,
  `org:${entry.principal.tenantId}`,
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
