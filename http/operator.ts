import type { Context, MiddlewareHandler } from 'hono'
import { constantTimeEqual } from '../adapters/constant-time.ts'
import type { Actor, EventStore } from '../adapters/event-store.ts'
import { operatorsStream } from '../adapters/streams.ts'
import { foldRecorded } from '../domain/decider.ts'
import { operators } from '../domain/operators.ts'
import { verifyToken } from './accounts.ts'
import { bearerToken, isAgentToken, requireBearer } from './bearer.ts'
import type { AppDeps } from './context.ts'
import { forbidden, HttpProblem, unauthorized } from './problem.ts'

/*
 * Who may use the Control API: operators, each a global account granted the role (domain/operators.ts), signed
 * in with their account session as a bearer token (the token /auth/me takes). The shared OPERATOR_TOKEN only
 * bootstraps: it may ask POST /control/operators for the first operator, and is refused everywhere else.
 */

/** The caller of a Control API request: an operator's account, or the bootstrap token on its one route. */
export type OperatorPrincipal = { readonly kind: 'operator'; readonly accountId: string } | { readonly kind: 'bootstrap' }

export type OperatorDeps = Pick<AppDeps, 'store' | 'config'>

const TTL_MS = 5_000

/**
 * Who holds the operator role, folded from its stream and kept a few seconds: operators are few and their requests
 * rare, but each control route checks. A grant or revocation made by this process is seen at once (invalidate);
 * one made by another process within TTL_MS.
 */
class OperatorDirectory {
  private cached: { operators: ReadonlySet<string>; until: number } | null = null
  private loading: Promise<ReadonlySet<string>> | null = null
  private generation = 0

  private readonly store: EventStore

  constructor(store: EventStore) {
    this.store = store
  }

  async has(accountId: string): Promise<boolean> {
    if (this.cached && this.cached.until > Date.now()) return this.cached.operators.has(accountId)
    this.loading ??= this.load()
    return (await this.loading).has(accountId)
  }

  private async load(): Promise<ReadonlySet<string>> {
    const generation = this.generation
    try {
      const state = foldRecorded(operators, await this.store.readStream(operatorsStream()))
      // A change heard of while reading may not be in what was read: used once, not kept.
      if (generation === this.generation) this.cached = { operators: state.operators, until: Date.now() + TTL_MS }
      return state.operators
    } finally {
      this.loading = null
    }
  }

  invalidate(): void {
    this.generation++
    this.cached = null
    this.loading = null
  }
}

const directories = new WeakMap<EventStore, OperatorDirectory>()

/** The operator directory of a process (one per event store: tests run several servers in one process). */
export function operatorDirectory(deps: Pick<AppDeps, 'store'>): OperatorDirectory {
  let directory = directories.get(deps.store)
  if (!directory) {
    directory = new OperatorDirectory(deps.store)
    directories.set(deps.store, directory)
  }
  return directory
}

const isOperatorToken = (token: string, operatorToken: string | undefined): boolean =>
  operatorToken ? constantTimeEqual(token, operatorToken) : false

const BOOTSTRAP_ROUTE = 'POST /control/operators'
const KEY = 'operator'

/** The request's operator, once requireOperator has let it through. */
export function operatorOf(c: Context): OperatorPrincipal {
  const p = (c.get as (k: string) => unknown)(KEY) as OperatorPrincipal | undefined
  if (!p) throw unauthorized()
  return p
}

/** The actor of a control command's events: the operator's account, or the bootstrap token. */
export const operatorActor = (c: Context): Actor => {
  const p = operatorOf(c)
  return p.kind === 'operator' ? { type: 'operator', id: p.accountId } : { type: 'service', id: 'operator-token' }
}

/** Whose Idempotency-Key a control request's is (null: not an operator's request). */
export const operatorKeyOf = (c: Context): string | null => {
  const p = (c.get as (k: string) => unknown)(KEY) as OperatorPrincipal | undefined
  return p ? (p.kind === 'operator' ? `operator:${p.accountId}` : 'operator-token') : null
}

async function authenticate(c: Context, deps: OperatorDeps): Promise<OperatorPrincipal> {
  const token = bearerToken(c)
  if (!token) throw unauthorized('operators send their account session as a bearer token')
  if (isOperatorToken(token, deps.config.OPERATOR_TOKEN)) {
    if (`${c.req.method} ${c.req.path}` === BOOTSTRAP_ROUTE) return { kind: 'bootstrap' }
    throw new HttpProblem({
      status: 403,
      code: 'OPERATOR_TOKEN_BOOTSTRAP_ONLY',
      title: 'Forbidden',
      detail: 'the shared operator token only grants the first operator (POST /control/operators): sign in as an operator',
    })
  }
  if (isAgentToken(token)) throw forbidden('operators only', 'OPERATORS_ONLY')
  const credential = await verifyToken(deps, token, new Date())
  if (!credential) throw unauthorized()
  // A tenant session or a personal token acts in one org: the Control API takes the account's own session.
  if (credential.kind !== 'session' || credential.tenantId !== null) {
    throw forbidden('operators only: use your account session, not a credential bound to one org', 'OPERATORS_ONLY')
  }
  if (!(await operatorDirectory(deps).has(credential.accountId))) throw forbidden('operators only', 'OPERATORS_ONLY')
  return { kind: 'operator', accountId: credential.accountId }
}

/**
 * Lets operators through (401 without credentials, 403 for anyone else) and records who (operatorOf). Every
 * control module mounts it on its routes; a request is authenticated once, whichever runs first.
 */
export const requireOperator =
  (deps: OperatorDeps): MiddlewareHandler =>
  async (c, next) => {
    const set = c.set as (k: string, v: unknown) => void
    if (!(c.get as (k: string) => unknown)(KEY)) set(KEY, await authenticate(c, deps))
    await next()
  }

/**
 * /metrics: the shared token is a scrape configuration's credential (Prometheus cannot sign in). Without one
 * configured, nobody scrapes.
 */
export const requireScrapeToken = (operatorToken: string | undefined): MiddlewareHandler =>
  requireBearer({
    verify: (token) => isOperatorToken(token, operatorToken),
    missing: () => unauthorized(),
    refused: () => forbidden('operators only'),
  })
