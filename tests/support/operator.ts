import { v7 as uuid } from 'uuid'
import { expect } from 'vitest'
import type { EventStore } from '../../adapters/event-store.ts'
import { issueCredential, signInAccount } from '../../commands/accounts.ts'
import { bootstrapOperator as bootstrapInStore } from '../../commands/operators.ts'
import type { CommandContext } from '../../commands/pipeline.ts'
import { eventUpcasters } from '../../domain/schema-versions.ts'
import { login } from './identity.ts'
import { OPERATOR_TOKEN, type TestResponse, type TestServer } from './server.ts'

/*
 * An operator for tests: a person signs in at the dev IdP, and the shared OPERATOR_TOKEN grants them the operator
 * role (its one use, POST /control/operators). Their account session is then the bearer token of the Control API.
 */

/** Enough of a server to sign in at and call: a TestServer, or a child process's URL. */
export type Reachable = Pick<TestServer, 'url'> & Partial<Pick<TestServer, 'request'>>

const requester =
  (url: string): TestServer['request'] =>
  async (method, path, init = {}) => {
    const headers: Record<string, string> = { ...init.headers }
    if (init.token) headers.authorization = `Bearer ${init.token}`
    if (init.body !== undefined) headers['content-type'] ??= 'application/json'
    const res = await fetch(url + path, {
      method,
      headers,
      redirect: 'manual',
      ...(init.body !== undefined ? { body: typeof init.body === 'string' ? init.body : JSON.stringify(init.body) } : {}),
    })
    const text = await res.text()
    let body: unknown = text
    try {
      body = text ? JSON.parse(text) : null
    } catch {}
    return { status: res.status, headers: res.headers, body } satisfies TestResponse
  }

export type SignedInOperator = { accountToken: string; accountId: string; position: number }

/** Signs `email` in and grants the first operator with the shared token (the bootstrap). */
export async function bootstrapOperator(server: Reachable, email = 'ops@platform.test'): Promise<SignedInOperator> {
  const reachable = { url: server.url, request: server.request ?? requester(server.url) } as TestServer
  const person = await login(reachable, email)
  const granted = await reachable.request('POST', '/control/operators', {
    token: OPERATOR_TOKEN,
    body: { accountId: person.accountId },
  })
  expect(granted.status, JSON.stringify(granted.body)).toBe(201)
  return { accountToken: person.accountToken, accountId: person.accountId, position: granted.body.position }
}

const operators = new WeakMap<object, Promise<SignedInOperator>>()

/**
 * The server's operator, bootstrapped on first use and kept for the server (the key: the server object, or any
 * object standing for servers that share one database). Their account session is the Control API's bearer token.
 */
export async function operatorToken(server: Reachable, key: object = server): Promise<string> {
  return (await operatorAccount(server, key)).accountToken
}

/** The server's operator (see operatorToken), with their account id: what their actions are recorded under. */
export function operatorAccount(server: Reachable, key: object = server): Promise<SignedInOperator> {
  let op = operators.get(key)
  if (!op) {
    op = bootstrapOperator(server)
    operators.set(key, op)
    op.catch(() => operators.delete(key))
  }
  return op
}

/**
 * An operator made straight in an event store, for tests without an HTTP sign-in (an app built in the test, a child
 * process): an account, its session (the bearer token) and the first operator grant, as the commands record them.
 */
export async function operatorSessionIn(store: EventStore, email = 'ops@platform.test'): Promise<string> {
  const deps = { store, upcasters: eventUpcasters }
  const ctx: CommandContext = {
    tenantId: null,
    actor: { type: 'system', id: 'test' },
    correlationId: uuid(),
    causationId: null,
    now: () => new Date(),
    newId: uuid,
  }
  const { accountId } = await signInAccount(deps, ctx, { issuer: 'https://idp.test', subject: email, email, emailVerified: true })
  const { token } = await issueCredential(deps, ctx, {
    kind: 'session',
    accountId,
    tenantId: null,
    userId: null,
    ttlMs: 3_600_000,
  })
  await bootstrapInStore(deps, ctx, accountId)
  return token
}
