import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { join, signInAgent, signUp } from '../support/identity.ts'
import { operatorToken } from '../support/operator.ts'
import { startTestServer, type TestServer } from '../support/server.ts'

/**
 * The authorization matrix: every route below × every kind of caller, generated from one table. A cell is
 * the expected status; `setup` makes fresh resources per cell so that cells cannot disturb each other.
 */
type Who = 'anonymous' | 'otherTenant' | 'guest' | 'member' | 'admin' | 'owner' | 'agent' | 'operator'
const WHO: Who[] = ['anonymous', 'otherTenant', 'guest', 'member', 'admin', 'owner', 'agent', 'operator']

type Fixture = {
  tokens: Record<Who, string | null>
  users: { owner: string; admin: string; member: string; guest: string }
  publicRoom: string
  privateRoom: string
  post(token: string, roomId: string, text?: string): Promise<string>
  room(token: string, visibility: 'public' | 'private', members?: string[]): Promise<string>
  newUser(): Promise<string>
}

type Row = {
  name: string
  method: string
  path: (fx: Fixture) => Promise<string> | string
  body?: unknown
  expect: Record<Who, number>
}

/**
 * Expected statuses in the order of WHO. The agent is a member of the org but of no room in the fixture. The operator
 * signs in with their account session, which names no org: the Tenant API refuses it (403 TENANT_SESSION_REQUIRED).
 */
const T = (
  anonymous: number,
  otherTenant: number,
  guest: number,
  member: number,
  admin: number,
  owner: number,
  agent: number,
  operator: number,
) => ({ anonymous, otherTenant, guest, member, admin, owner, agent, operator })

const rows: Row[] = [
  { name: 'list rooms', method: 'GET', path: () => '/api/rooms', expect: T(401, 200, 200, 200, 200, 200, 200, 403) },
  {
    name: 'read a public room',
    method: 'GET',
    path: (f) => `/api/rooms/${f.publicRoom}`,
    expect: T(401, 404, 404, 200, 200, 200, 200, 403),
  },
  {
    name: 'read a private room',
    method: 'GET',
    path: (f) => `/api/rooms/${f.privateRoom}`,
    expect: T(401, 404, 404, 200, 404, 200, 404, 403),
  },
  {
    name: 'read a private timeline',
    method: 'GET',
    path: (f) => `/api/rooms/${f.privateRoom}/messages`,
    expect: T(401, 404, 404, 200, 404, 200, 404, 403),
  },
  {
    name: 'post in a public room',
    method: 'POST',
    path: (f) => `/api/rooms/${f.publicRoom}/messages`,
    body: { text: 'hi' },
    expect: T(401, 404, 404, 201, 403, 201, 403, 403),
  },
  {
    name: 'rename a room',
    method: 'PATCH',
    path: (f) => `/api/rooms/${f.publicRoom}`,
    body: { description: 'x' },
    expect: T(401, 404, 404, 200, 200, 200, 403, 403),
  },
  {
    name: 'archive a room',
    method: 'POST',
    path: async (f) => `/api/rooms/${await f.room(f.tokens.owner!, 'public', [f.users.member])}/archive`,
    expect: T(401, 404, 404, 403, 200, 200, 403, 403),
  },
  {
    name: 'edit a member’s message',
    method: 'PATCH',
    path: async (f) => `/api/messages/${await f.post(f.tokens.member!, f.publicRoom)}`,
    body: { text: 'edited' },
    expect: T(401, 404, 404, 200, 403, 403, 403, 403),
  },
  {
    name: 'delete a member’s message',
    method: 'DELETE',
    path: async (f) => `/api/messages/${await f.post(f.tokens.member!, f.publicRoom)}`,
    expect: T(401, 404, 404, 200, 200, 200, 403, 403),
  },
  {
    name: 'create a room',
    method: 'POST',
    path: () => '/api/rooms',
    body: { name: 'r' },
    expect: T(401, 201, 403, 201, 201, 201, 201, 403),
  },
  {
    name: 'create a space',
    method: 'POST',
    path: () => '/api/spaces',
    body: { name: 's' },
    expect: T(401, 201, 403, 201, 201, 201, 201, 403),
  },
  {
    name: 'invite',
    method: 'POST',
    path: () => '/api/invites',
    body: { email: 'new@acme.test', role: 'member' },
    expect: T(401, 201, 403, 403, 201, 201, 403, 403),
  },
  {
    name: 'change a member’s role',
    method: 'PATCH',
    path: async (f) => `/api/users/${await f.newUser()}`,
    body: { role: 'guest' },
    expect: T(401, 404, 403, 403, 200, 200, 403, 403),
  },
  {
    name: 'demote the last owner',
    method: 'PATCH',
    path: (f) => `/api/users/${f.users.owner}`,
    body: { role: 'member' },
    expect: T(401, 404, 403, 403, 403, 422, 403, 403),
  },
  { name: 'list users', method: 'GET', path: () => '/api/users', expect: T(401, 200, 200, 200, 200, 200, 200, 403) },
  {
    name: 'search messages',
    method: 'GET',
    path: () => '/api/search/messages?q=hi',
    expect: T(401, 200, 200, 200, 200, 200, 200, 403),
  },
  {
    name: 'register a realtime queue',
    method: 'POST',
    path: () => '/realtime/register',
    body: {},
    expect: T(401, 200, 200, 200, 200, 200, 200, 403),
  },
  { name: 'operators list orgs', method: 'GET', path: () => '/control/orgs', expect: T(401, 403, 403, 403, 403, 403, 403, 200) },
  {
    name: 'operators see projections',
    method: 'GET',
    path: () => '/control/projections',
    expect: T(401, 403, 403, 403, 403, 403, 403, 200),
  },
]

let server: TestServer
let fx: Fixture

beforeAll(async () => {
  server = await startTestServer({ RATE_LIMIT_IP_PER_MINUTE: '1000000', RATE_LIMIT_USER_PER_MINUTE: '1000000' })
  const owner = await signUp(server, { email: 'owner@acme.test', orgName: 'Matrix Org', username: 'owner' })
  const admin = await join(server, owner.token, { email: 'admin@acme.test', role: 'admin', username: 'admin' })
  const member = await join(server, owner.token, { email: 'member@acme.test', role: 'member', username: 'member' })
  const guest = await join(server, owner.token, { email: 'guest@acme.test', role: 'guest', username: 'guest' })
  const other = await signUp(server, { email: 'other@evil.test', orgName: 'Other Org', username: 'other' })
  const agent = await signInAgent(server, owner.token, { name: 'Matrix Bot' })
  let n = 0
  const room = async (token: string, visibility: 'public' | 'private', members: string[] = []) => {
    const r = await server.request('POST', '/api/rooms', { token, body: { name: `room ${n++}`, visibility } })
    let position = r.body.position
    for (const userId of members) {
      position = (await server.request('POST', `/api/rooms/${r.body.roomId}/members`, { token, body: { userId } })).body.position
    }
    // The cells read without consistentAfter: let the read models catch up with the fixture first.
    await server.request('GET', `/api/rooms?consistentAfter=${position}`, { token })
    return r.body.roomId as string
  }
  const post = async (token: string, roomId: string, text = 'hello') => {
    const r = await server.request('POST', `/api/rooms/${roomId}/messages`, { token, body: { text } })
    expect(r.status).toBe(201)
    await server.request('GET', `/api/rooms?consistentAfter=${r.body.position}`, { token })
    return r.body.messageId as string
  }
  fx = {
    tokens: {
      anonymous: null,
      otherTenant: other.token,
      guest: guest.token,
      member: member.token,
      admin: admin.token,
      owner: owner.token,
      agent: agent.token,
      operator: await operatorToken(server),
    },
    users: { owner: owner.userId, admin: admin.userId, member: member.userId, guest: guest.userId },
    publicRoom: await room(owner.token, 'public', [member.userId]),
    privateRoom: await room(owner.token, 'private', [member.userId]),
    room,
    post,
    newUser: async () =>
      (await join(server, owner.token, { email: `u${n}@acme.test`, role: 'member', username: `u${n++}` })).userId,
  }
}, 120_000)
afterAll(async () => {
  await server?.close()
})

describe('authorization matrix', () => {
  for (const row of rows) {
    it(row.name, async () => {
      const got: Record<string, number> = {}
      for (const who of WHO) {
        const path = await row.path(fx)
        const token = fx.tokens[who]
        const r = await server.request(row.method, path, {
          ...(token ? { token } : {}),
          ...(row.body !== undefined ? { body: row.body } : {}),
        })
        got[who] = r.status
        if (r.status >= 400) expect(r.headers.get('content-type')).toContain('application/problem+json')
      }
      expect(got).toEqual(row.expect)
    })
  }
})
