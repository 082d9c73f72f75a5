import type { Config } from '../adapters/config.ts'
import type { EventStore } from '../adapters/event-store.ts'
import type { Logger } from '../adapters/logger.ts'
import type { AnyDb } from '../adapters/postgres.ts'
import type { StreamCache } from '../adapters/stream-cache.ts'
import type { UpcasterRegistry } from '../domain/upcasting.ts'
import type { Caller, Claimed, Principal } from './principal.ts'
import type { CachedAuthentication, PrincipalCache } from './principal-cache.ts'

/**
 * Read-your-writes, as the HTTP shell needs it: waits, bounded, until the named projectors have passed a
 * public position (projections/consistency.ts implements it; bin/ passes it in).
 */
export type ConsistencyWaiter = {
  waitFor(projectors: readonly string[], publicPosition: bigint, caller?: string): Promise<void>
  /** Whether the named projectors have passed a public position now (false for a position no event holds). */
  hasReached(projectors: readonly string[], publicPosition: bigint): Promise<boolean>
}

/** What every route module is given: ports, never concrete adapters. */
export type AppDeps = {
  readonly config: Config
  readonly logger: Logger
  readonly store: EventStore
  readonly upcasters: UpcasterRegistry
  /** The tenant database: read models under row-level security, drafts, realtime. */
  readonly db: AnyDb
  /** The control database: the orgs registry, memberships, idempotency keys, parked events. Never joined with `db`. */
  readonly controlDb: AnyDb
  /** Streams decisions read, as this process last read them (commands/pipeline.ts). */
  readonly streamCache: StreamCache
  /** Tenant API authentications this process answered a moment ago, forgotten when events change them. */
  readonly principals: PrincipalCache
  readonly waiter: ConsistencyWaiter
}

/** What the middleware sets on a request for the routes after it. */
export type AppEnv = {
  Variables: {
    requestId: string
    log: Logger
    correlationId: string
    /** The principal of a Tenant API request, set by its authentication. */
    principal?: Principal
    /** The verified credential of the request (null: none), set once by the first middleware that looks. */
    caller?: Caller | null
    /** Who a Tenant API request's credential names, before the org's users confirm it: what per-user limits count. */
    claimed?: Claimed
    /** A Tenant API credential's authentication, as this process answered it a moment ago (principal-cache.ts). */
    cachedAuthentication?: CachedAuthentication
    /** The principal cache's generation when this request began authenticating afresh. */
    authenticationGeneration?: number
    /** Set by the idempotency middleware: the ids a command generates follow from it. */
    idempotencySeed?: { seed: string; msecs: number }
  }
}
