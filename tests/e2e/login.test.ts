import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { login } from '../support/identity.ts'
import { startTestServer, type TestServer } from '../support/server.ts'

let server: TestServer
beforeAll(async () => {
  server = await startTestServer()
})
afterAll(async () => {
  await server?.close()
})

describe('sign-in over HTTP against the dev IdP', () => {
  it('login → IdP form → callback → session cookie → GET /auth/me', async () => {
    const { jar, landed } = await login(server, 'Ada@Example.test', '/welcome')
    expect(landed).toBe(`${server.url}/welcome`)
    const me = await jar.fetch(`${server.url}/auth/me`)
    expect(me.status).toBe(200)
    const body = (await me.json()) as any
    expect(body.email).toBe('ada@example.test')
    expect(body.memberships).toEqual([])
  })
})
