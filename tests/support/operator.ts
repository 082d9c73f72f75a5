import { expect } from 'vitest'
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
  let op = operators.get(key)
  if (!op) {
    op = bootstrapOperator(server)
    operators.set(key, op)
    op.catch(() => operators.delete(key))
  }
  return (await op).accountToken
}
