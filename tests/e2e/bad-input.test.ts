import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { loginUntilCallback, signUp } from '../support/identity.ts'
import { operatorToken } from '../support/operator.ts'
import { eventCount, startTestServer, type TestResponse, type TestServer } from '../support/server.ts'

/*
 * Input Postgres cannot store: NUL (U+0000) is refused in text and jsonb, so it must be refused at the door
 * as the client's mistake (400), whichever field carries it, never reach a query and come back as a 500.
 */

let server: TestServer
let owner: Awaited<ReturnType<typeof signUp>>

/** The operator's account session (tests/support/operator.ts). */
let OPERATOR_TOKEN: string
beforeAll(async () => {
  server = await startTestServer()
  owner = await signUp(server, { email: 'nul@bad-input.test', orgName: 'Bad Input', username: 'nul' })
  OPERATOR_TOKEN = await operatorToken(server)
}, 60_000)
afterAll(async () => {
  await server?.close()
})

const expectRefused = (r: TestResponse, what: string, path?: string) => {
  expect(r.status, `${what}: ${JSON.stringify(r.body)}`).toBe(400)
  expect(r.headers.get('content-type'), what).toContain('application/problem+json')
  expect(r.body, what).toMatchObject({ status: 400, code: 'INVALID_INPUT' })
  if (path) expect(r.body.errors, what).toContainEqual(expect.objectContaining({ path }))
}

describe('NUL in any text field answers 400, and nothing is written', () => {
  it('in a JSON body: a value, a nested value, an array item, a key', async () => {
    const before = await eventCount(server)
    const cases: [string, string, unknown, string][] = [
      ['POST', '/api/rooms', { name: 'a\u0000b', visibility: 'public' }, 'name'],
      ['POST', `/api/rooms/${owner.homeRoomId}/messages`, { text: 'hello\u0000' }, 'text'],
      ['PUT', `/api/rooms/${owner.homeRoomId}/draft`, { text: '\u0000' }, 'text'],
      ['POST', '/api/spaces', { name: 'space', extra: { deep: ['ok', 'no\u0000'] } }, 'extra.deep.1'],
      ['POST', '/api/spaces', { 'na\u0000me': 'x' }, '(body)'],
      ['POST', '/orgs/onboard', { name: 'Nul\u0000 Org' }, 'name'],
      ['POST', '/control/orgs', { name: '\u0000' }, 'name'],
    ]
    for (const [method, path, body, field] of cases) {
      const token = path.startsWith('/control') ? OPERATOR_TOKEN : path.startsWith('/orgs') ? owner.accountToken : owner.token
      expectRefused(await server.request(method, path, { token, body }), `${method} ${path}`, field)
    }
    expect(await eventCount(server)).toBe(before)
  })

  it('in a query string', async () => {
    expectRefused(await server.request('GET', '/api/search/messages?q=a%00b', { token: owner.token }), 'search', 'q')
    expectRefused(await server.request('GET', '/orgs/name-check?name=%00'), 'name-check', 'name')
  })

  it('in a path parameter', async () => {
    const before = await eventCount(server)
    const posted = await server.request('POST', `/api/rooms/${owner.homeRoomId}/messages`, {
      token: owner.token,
      body: { text: 'react to me' },
    })
    expect(posted.status).toBe(201)
    const emoji = await server.request('PUT', `/api/messages/${posted.body.messageId}/reactions/smile%00`, { token: owner.token })
    expectRefused(emoji, 'reaction emoji')
    const invite = await server.request('POST', '/orgs/invites/abc%00def/accept', { token: owner.accountToken })
    expectRefused(invite, 'invite token')
    expect(await eventCount(server)).toBe(before + 1)
  })

  it('in what an identity provider vouches for (the dev IdP signs in any email): the callback answers 400', async () => {
    const { jar, callbackUrl } = await loginUntilCallback(server, 'nul\u0000@bad-input.test')
    const before = await eventCount(server)
    const r = await jar.fetch(callbackUrl)
    expect(r.status, await r.clone().text()).toBe(400)
    expect(r.headers.get('content-type')).toContain('application/problem+json')
    expect(await r.json()).toMatchObject({ code: 'INVALID_INPUT', errors: [expect.objectContaining({ path: 'email' })] })
    expect(await eventCount(server)).toBe(before)
  })
})
