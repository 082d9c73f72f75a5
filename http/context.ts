import { createHash } from 'node:crypto'
import { getConnInfo } from '@hono/node-server/conninfo'
import { OpenAPIHono } from '@hono/zod-openapi'
import type { Context } from 'hono'
import { v7 as uuid } from 'uuid'
import type { Config } from '../adapters/config.ts'
import type { Actor, EventStore } from '../adapters/event-store.ts'
import type { Logger } from '../adapters/logger.ts'
import type { AnyDb } from '../adapters/postgres.ts'
import type { CommandContext, PipelineDeps } from '../commands/pipeline.ts'
import type { UpcasterRegistry } from '../domain/upcasting.ts'
import type { ConsistencyWaiter } from '../projections/consistency.ts'
import { zodFieldErrors } from './errors.ts'
import { badRequest, renderProblem } from './problem.ts'

/** What every route module is given: ports, never concrete adapters. */
export type AppDeps = {
  readonly config: Config
  readonly logger: Logger
  readonly store: EventStore
  readonly upcasters: UpcasterRegistry
  readonly db: AnyDb
  readonly waiter: ConsistencyWaiter
}

export type AppEnv = {
  Variables: {
    requestId: string
    log: Logger
    correlationId: string
    /** The principal of a Tenant API request, set by its authentication. */
    principal?: import('./principal.ts').Principal
    /** The verified credential of the request (null: none), set once by the first middleware that looks. */
    caller?: import('../commands/authenticate.ts').Caller | null
    /** Who a Tenant API request's credential names, before the org's users confirm it: what per-user limits count. */
    claimed?: import('../commands/authenticate.ts').Claimed
    /** Set by the idempotency middleware: the ids a command generates follow from it. */
    idempotencySeed?: { seed: string; msecs: number }
  }
}

/** A router whose validation failures answer 400 problem+json with per-field errors. */
export const router = () =>
  new OpenAPIHono<AppEnv>({
    defaultHook: (result, c) => {
      if (!result.success) {
        return renderProblem(c, {
          status: 400,
          code: 'INVALID_INPUT',
          title: 'Invalid input',
          detail: 'the request is invalid',
          errors: zodFieldErrors(result.error),
        })
      }
    },
  })

export const pipelineDeps = (deps: AppDeps): PipelineDeps => ({
  store: deps.store,
  upcasters: deps.upcasters,
})

/**
 * UUIDv7s that the same idempotency seed always yields in the same order: a retried command decides the
 * same events with the same ids, and the event store answers the retry without appending.
 */
export const seededIds = (seed: string, msecs: number): (() => string) => {
  let n = 0
  return () => {
    const random = createHash('sha256').update(`${seed}#${n}`).digest().subarray(0, 16)
    return uuid({ msecs, seq: n++, random })
  }
}

/** The command context of an HTTP request: the request is the cause, its correlation id flows on. */
export const commandContext = (c: Context<AppEnv>, actor: Actor, tenantId: string | null): CommandContext => {
  const seeded = c.get('idempotencySeed')
  return {
    tenantId,
    actor,
    correlationId: c.get('correlationId'),
    causationId: c.get('requestId'),
    now: seeded ? () => new Date(seeded.msecs) : () => new Date(),
    newId: seeded ? seededIds(seeded.seed, seeded.msecs) : uuid,
  }
}

const POSITION = /^\d{1,18}$/

/** Who a wait counts against: the user the credential names, else the signed-in account, else the client address. */
const waiterOf = (c: Context<AppEnv>): string => {
  const user = c.get('principal') ?? c.get('claimed')
  if (user) return `user:${user.tenantId}:${user.userId}`
  const caller = c.get('caller')
  if (caller) return `account:${caller.credential.accountId}`
  return `address:${getConnInfo(c).remote.address ?? 'unknown'}`
}

/**
 * Honours `consistentAfter=<position>` (or the Consistent-After header) for the read models a route reads:
 * 400 for a position no event holds, 429 past the caller's concurrent waits (ConsistencyWaiter).
 */
export async function consistent(c: Context<AppEnv>, deps: AppDeps, projectors: readonly string[]): Promise<void> {
  const raw = c.req.query('consistentAfter') ?? c.req.header('consistent-after')
  if (raw === undefined || raw === '') return
  if (!POSITION.test(raw)) {
    throw badRequest('consistentAfter is a position: a non-negative integer', [
      { path: 'consistentAfter', message: 'expected a non-negative integer' },
    ])
  }
  await deps.waiter.waitFor(projectors, BigInt(raw), waiterOf(c))
}
