import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { signAgentCredential } from '../../adapters/agent-credentials.ts'
import { activate, agentLogin, createAgent, join, login, signInAgent, signUp, tenantSession } from '../support/identity.ts'
import { operatorToken } from '../support/operator.ts'
import { startTestServer, type TestServer } from '../support/server.ts'

const SERVICE_TOKEN = 'test-service-token-0123456789abcdef0123'

let server: TestServer
let owner: Awaited<ReturnType<typeof signUp>>
beforeAll(async () => {
  server = await startTestServer({ SERVICE_TOKEN })
  owner = await signUp(server, { email: 'olga@acme.test', orgName: 'Acme Identity', username: 'olga' })
})
afterAll(async () => {
  await server?.close()
})

const BASE64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'
/** The same 32 bytes in other base64url: the last of 43 characters has two bits no decoder reads. */
const otherSpelling = (signature: string) => signature.slice(0, -1) + BASE64URL[BASE64URL.indexOf(signature.at(-1)!) ^ 3]

const as = (who: { token: string }, body?: unknown) => ({ token: who.token, ...(body === undefined ? {} : { body }) })

describe('onboarding', () => {
  it('creates the org with its owner and home room; the name is then taken', async () => {
    const a = await login(server, 'founder@acme.test')
    const check = await server.request('GET', '/orgs/name-check?name=Founders%20Club')
    expect(check.body).toMatchObject({ available: true, slug: 'founders-club' })
    const r = await server.request('POST', '/orgs/onboard', { token: a.accountToken, body: { name: 'Founders Club' } })
    expect(r.status).toBe(201)
    expect(r.body).toMatchObject({ slug: 'founders-club' })
    expect(r.body.position).toBeTypeOf('number')
    const me = await server.request('GET', `/auth/me?consistentAfter=${r.body.position}`, { token: a.accountToken })
    expect(me.body.memberships).toEqual([
      expect.objectContaining({ orgId: r.body.orgId, slug: 'founders-club', role: 'owner', userId: r.body.userId }),
    ])
    const session = await tenantSession(server, a.accountToken, 'founders-club')
    await activate(server, session.token, 'founder')
    const home = await server.request('GET', `/api/rooms/${r.body.homeRoomId}?consistentAfter=${r.body.position}`, as(session))
    expect(home.status).toBe(200)
    expect((await server.request('GET', '/orgs/name-check?name=founders%20club')).body).toMatchObject({
      available: false,
      reason: 'taken',
    })
    const again = await server.request('POST', '/orgs/onboard', { token: a.accountToken, body: { name: 'Founders  CLUB' } })
    expect(again.status).toBe(409)
    expect((await server.request('POST', '/orgs/onboard', { token: a.accountToken, body: { name: 'api' } })).status).toBe(422)
    expect((await server.request('POST', '/orgs/onboard', { body: { name: 'Anonymous Org' } })).status).toBe(401)
  })

  it('two concurrent onboardings of one name: exactly one wins, the other gets 409', async () => {
    const [a, b] = await Promise.all([login(server, 'racer-a@acme.test'), login(server, 'racer-b@acme.test')])
    for (let round = 0; round < 5; round++) {
      const name = `Race Org ${round}`
      const answers = await Promise.all(
        [a, b].map((who) => server.request('POST', '/orgs/onboard', { token: who.accountToken, body: { name } })),
      )
      expect(answers.map((r) => r.status).sort()).toEqual([201, 409])
      const loser = answers.find((r) => r.status === 409)!
      expect(loser.body.code).toBe('NAME_TAKEN')
      // The loser has no membership in the winner's org.
      const winnerOrg = answers.find((r) => r.status === 201)!.body.orgId
      const loserAccount = answers[0]!.status === 409 ? a : b
      expect(
        (await server.request('POST', '/auth/tenant-session', { token: loserAccount.accountToken, body: { org: winnerOrg } }))
          .status,
      ).toBe(404)
    }
  })
})

describe('activation and the users of an org', () => {
  it('until a username is picked only /api/me and /api/me/activate answer', async () => {
    const invite = await server.request('POST', '/api/invites', as(owner, { email: 'newbie@acme.test', role: 'member' }))
    const a = await login(server, 'newbie@acme.test')
    const accepted = await server.request('POST', `/orgs/invites/${invite.body.token}/accept`, { token: a.accountToken })
    const session = await tenantSession(server, a.accountToken, accepted.body.orgId)
    const me = await server.request('GET', '/api/me', as(session))
    expect(me.status).toBe(200)
    expect(me.body).toMatchObject({ activated: false, username: null, role: 'member', email: 'newbie@acme.test' })
    for (const [method, path] of [
      ['GET', '/api/rooms'],
      ['GET', '/api/users'],
      ['POST', '/api/rooms'],
    ] as const) {
      const r = await server.request(
        method,
        path,
        as(session, method === 'POST' ? { name: 'x', visibility: 'public' } : undefined),
      )
      expect(r.status, path).toBe(403)
      expect(r.body.code).toBe('ACTIVATION_REQUIRED')
    }
    expect((await server.request('POST', '/api/me/activate', as(session, { username: 'Not Valid!' }))).status).toBe(422)
    expect((await server.request('POST', '/api/me/activate', as(session, { username: 'olga' }))).status).toBe(409)
    const ok = await server.request('POST', '/api/me/activate', as(session, { username: 'newbie' }))
    expect(ok.status).toBe(200)
    expect((await server.request('GET', '/api/rooms', as(session))).status).toBe(200)
    // A username is picked once.
    expect((await server.request('POST', '/api/me/activate', as(session, { username: 'other-name' }))).status).toBe(409)
  })

  it('lists users with a cursor', async () => {
    let position = 0
    for (const n of [1, 2, 3]) {
      ;({ position } = await join(server, owner.token, { email: `page${n}@acme.test`, role: 'member', username: `page${n}` }))
    }
    const seen: string[] = []
    let cursor: string | null = null
    let pages = 0
    do {
      const q: string = `/api/users?limit=2&consistentAfter=${position}${cursor ? `&cursor=${cursor}` : ''}`
      const r = await server.request('GET', q, as(owner))
      expect(r.status).toBe(200)
      expect(r.body.items.length).toBeLessThanOrEqual(2)
      seen.push(...r.body.items.map((u: { username: string | null }) => u.username))
      cursor = r.body.nextCursor
      pages++
    } while (cursor && pages < 20)
    expect(seen).toEqual(expect.arrayContaining(['olga', 'page1', 'page2', 'page3']))
    expect(new Set(seen).size).toBe(seen.length)
    expect((await server.request('GET', '/api/users?cursor=garbage', as(owner))).status).toBe(400)
  })

  it('roles: owners set any role, admins promote members, the last owner is never demoted or removed', async () => {
    const admin = await join(server, owner.token, { email: 'adam@acme.test', role: 'admin', username: 'adam' })
    const member = await join(server, owner.token, { email: 'mia@acme.test', role: 'member', username: 'mia' })
    const guest = await join(server, owner.token, { email: 'gus@acme.test', role: 'guest', username: 'gus' })
    const patch = (who: { token: string }, userId: string, role: string) =>
      server.request('PATCH', `/api/users/${userId}`, as(who, { role }))

    const lastOwner = await patch(owner, owner.userId, 'admin')
    expect(lastOwner.status).toBe(422)
    expect(lastOwner.body.code).toBe('LAST_OWNER')
    expect((await server.request('DELETE', `/api/users/${owner.userId}`, as(owner))).status).toBe(422)

    expect((await patch(member, guest.userId, 'member')).status).toBe(403)
    expect((await patch(guest, member.userId, 'guest')).status).toBe(403)
    expect((await patch(admin, member.userId, 'admin')).status).toBe(200)
    expect((await patch(admin, owner.userId, 'member')).status).toBe(403)
    expect((await patch(admin, guest.userId, 'owner')).status).toBe(403)
    expect((await patch(owner, admin.userId, 'owner')).status).toBe(200)
    // Two owners now: one may step down, never both.
    expect((await patch(owner, owner.userId, 'admin')).status).toBe(200)
    const lastAgain = await patch(owner, admin.userId, 'member')
    expect(lastAgain.status).toBe(403) // owner is an admin now
    expect((await patch({ token: admin.token }, admin.userId, 'member')).status).toBe(422)
    // Restore for the other tests.
    expect((await patch(admin, owner.userId, 'owner')).status).toBe(200)
    expect(
      (await server.request('PATCH', '/api/users/00000000-0000-7000-8000-000000000000', as(owner, { role: 'admin' }))).status,
    ).toBe(404)
  })

  it('a removed user’s sessions stop working', async () => {
    const leaver = await join(server, owner.token, { email: 'leaver@acme.test', role: 'member', username: 'leaver' })
    const removed = await server.request('DELETE', `/api/users/${leaver.userId}`, as(owner))
    expect(removed.status).toBe(200)
    const after = await server.request('GET', `/api/users?consistentAfter=${removed.body.position}`, as(owner))
    expect(after.status).toBe(200)
    expect((await server.request('GET', '/api/me', as(leaver))).status).toBe(401)
  })
})

describe('invites', () => {
  it('are for one email, used once, revocable, and only admins send them', async () => {
    const member = await join(server, owner.token, { email: 'inviter@acme.test', role: 'member', username: 'inviter' })
    expect((await server.request('POST', '/api/invites', as(member, { email: 'x@acme.test', role: 'member' }))).status).toBe(403)

    const invite = await server.request('POST', '/api/invites', as(owner, { email: 'Ivy@Acme.test', role: 'guest' }))
    expect(invite.status).toBe(201)
    expect(invite.body.token).toMatch(/^wsi_/)
    expect(Date.parse(invite.body.expiresAt) - Date.now()).toBeGreaterThan(6.9 * 24 * 3600_000)

    const intruder = await login(server, 'not-ivy@acme.test')
    const wrong = await server.request('POST', `/orgs/invites/${invite.body.token}/accept`, { token: intruder.accountToken })
    expect(wrong.status).toBe(403)
    const ivy = await login(server, 'ivy@acme.test')
    const accepted = await server.request('POST', `/orgs/invites/${invite.body.token}/accept`, { token: ivy.accountToken })
    expect(accepted.status).toBe(200)
    const twice = await server.request('POST', `/orgs/invites/${invite.body.token}/accept`, { token: ivy.accountToken })
    expect(twice.status).toBe(409)
    const session = await tenantSession(server, ivy.accountToken, owner.slug)
    expect((await server.request('GET', '/api/me', as(session))).body.role).toBe('guest')

    const revoked = await server.request('POST', '/api/invites', as(owner, { email: 'rex@acme.test', role: 'member' }))
    expect((await server.request('DELETE', `/api/invites/${revoked.body.inviteId}`, as(owner))).status).toBe(200)
    const rex = await login(server, 'rex@acme.test')
    const late = await server.request('POST', `/orgs/invites/${revoked.body.token}/accept`, { token: rex.accountToken })
    expect(late.status).toBe(422)
    expect(late.body.code).toBe('INVITE_REVOKED')

    const [secret, id] = (invite.body.token as string).split('.')
    const forged = `${secret!.slice(0, -2)}xx.${id}`
    expect((await server.request('POST', `/orgs/invites/${forged}/accept`, { token: rex.accountToken })).status).toBe(404)
  })
})

describe('agents', () => {
  it('are users of type agent that sign in with an HMAC credential and get a token for their org', async () => {
    const agent = await createAgent(server, owner.token, { name: 'Build Bot' })
    expect(agent.username).toBe('build-bot')
    expect(agent.secret).toMatch(/^wsa_/)
    const { token, expiresAt } = await agentLogin(server, agent)
    expect(Date.parse(expiresAt) - Date.now()).toBeLessThanOrEqual(15 * 60_000 + 1_000)
    const me = await server.request('GET', '/api/me', { token })
    expect(me.status).toBe(200)
    expect(me.body).toMatchObject({ id: agent.agentId, type: 'agent', username: 'build-bot', role: 'member' })
    const room = await server.request('POST', '/api/rooms', { token, body: { name: 'Bot room', visibility: 'public' } })
    expect(room.status).toBe(201)
    const agents = await server.request('GET', `/api/users?type=agent&consistentAfter=${agent.position}`, as(owner))
    expect(agents.body.items.map((u: { id: string }) => u.id)).toContain(agent.agentId)
    // Agent tokens are for /api, never for the account routes.
    const account = await server.request('GET', '/auth/me', { token })
    expect(account.status).toBe(403)
    expect(account.body.code).toBe('ACCOUNT_SESSION_REQUIRED')
  })

  it('refuses replayed, stale, forged and unknown credentials with one 401', async () => {
    const agent = await createAgent(server, owner.token, { name: 'Careful Bot' })
    const credential = signAgentCredential(agent.agentId, agent.secret)
    expect((await server.request('POST', '/auth/agent-login', { body: credential })).status).toBe(200)
    const replayed = await server.request('POST', '/auth/agent-login', { body: credential })
    expect(replayed.status).toBe(401)
    // The same signature spelled otherwise (the last character's two spare bits) is the same credential.
    const sibling = await server.request('POST', '/auth/agent-login', {
      body: { ...credential, signature: otherSpelling(credential.signature) },
    })
    expect(sibling.status).toBe(401)
    const stale = signAgentCredential(agent.agentId, agent.secret, Date.now() - 10 * 60_000)
    expect((await server.request('POST', '/auth/agent-login', { body: stale })).status).toBe(401)
    const forged = signAgentCredential(agent.agentId, 'wsa_not-the-secret')
    expect((await server.request('POST', '/auth/agent-login', { body: forged })).status).toBe(401)
    const unknown = signAgentCredential('00000000-0000-7000-8000-000000000000', agent.secret)
    expect((await server.request('POST', '/auth/agent-login', { body: unknown })).status).toBe(401)
    expect(
      (await server.request('POST', '/auth/agent-login', { body: { agentId: agent.agentId, secret: agent.secret } })).status,
    ).toBe(400)
  })

  it('rotating the secret retires the old one (or keeps it for a grace period)', async () => {
    const agent = await createAgent(server, owner.token, { name: 'Rotating Bot', username: 'rotor' })
    const rotated = await server.request('POST', `/api/agents/${agent.agentId}/secret`, as(owner, {}))
    expect(rotated.status).toBe(200)
    expect(rotated.body.secret).not.toBe(agent.secret)
    expect(
      (await server.request('POST', '/auth/agent-login', { body: signAgentCredential(agent.agentId, agent.secret) })).status,
    ).toBe(401)
    await agentLogin(server, { agentId: agent.agentId, secret: rotated.body.secret })
    const graced = await server.request('POST', `/api/agents/${agent.agentId}/secret`, as(owner, { graceSeconds: 300 }))
    await agentLogin(server, { agentId: agent.agentId, secret: rotated.body.secret }, Date.now() - 2_000)
    await agentLogin(server, { agentId: agent.agentId, secret: graced.body.secret })

    const member = await join(server, owner.token, { email: 'botless@acme.test', role: 'member', username: 'botless' })
    expect((await server.request('POST', `/api/agents/${agent.agentId}/secret`, as(member, {}))).status).toBe(403)
    const guest = await join(server, owner.token, { email: 'guestbot@acme.test', role: 'guest', username: 'guestbot' })
    expect((await server.request('POST', '/api/agents', as(guest, { name: 'Nope' }))).status).toBe(403)
    expect((await server.request('POST', '/api/agents', as(owner, { name: 'Dup', username: 'rotor' }))).status).toBe(409)
  })

  it('a removed agent’s token stops working', async () => {
    const bot = await signInAgent(server, owner.token, { name: 'Temp Bot' })
    const before = await server.request('GET', '/api/me', { token: bot.token })
    expect(before.status, JSON.stringify(before.body)).toBe(200)
    const removed = await server.request('DELETE', `/api/users/${bot.userId}`, as(owner))
    expect(removed.status).toBe(200)
    await server.request('GET', `/api/users?consistentAfter=${removed.body.position}`, as(owner))
    expect((await server.request('GET', '/api/me', { token: bot.token })).status).toBe(401)
  })
})

describe('service credentials and suspended orgs', () => {
  it('/api/internal/* takes SERVICE_TOKEN only', async () => {
    expect((await server.request('GET', '/api/internal/whoami')).status).toBe(401)
    expect((await server.request('GET', '/api/internal/whoami', as(owner))).status).toBe(401)
    expect((await server.request('GET', '/api/internal/whoami', { token: `${SERVICE_TOKEN}x` })).status).toBe(401)
    const ok = await server.request('GET', '/api/internal/whoami', { token: SERVICE_TOKEN })
    expect(ok.status).toBe(200)
    expect(ok.body).toEqual({ caller: 'service' })
    // The service token is no tenant credential.
    expect((await server.request('GET', '/api/me', { token: SERVICE_TOKEN })).status).toBe(401)
  })

  it('a suspended org reads but takes no commands (403 ORG_SUSPENDED)', async () => {
    const org = await signUp(server, { email: 'sus@acme.test', orgName: 'Suspect Org', username: 'sus' })
    const operator = { token: await operatorToken(server) }
    const s = await server.request('POST', `/control/orgs/${org.orgId}/suspend`, { ...operator, body: { reason: 'abuse' } })
    expect(s.status).toBe(200)
    const waitingFor = (position: number) => ({ token: org.token, headers: { 'consistent-after': String(position) } })
    const refused = await server.request('POST', '/api/rooms', {
      ...waitingFor(s.body.position),
      body: { name: 'Nope', visibility: 'public' },
    })
    expect(refused.status).toBe(403)
    expect(refused.body.code).toBe('ORG_SUSPENDED')
    expect((await server.request('POST', '/api/invites', as(org, { email: 'y@acme.test', role: 'member' }))).status).toBe(403)
    expect((await server.request('GET', '/api/rooms', as(org))).status).toBe(200)
    const r = await server.request('POST', `/control/orgs/${org.orgId}/reactivate`, operator)
    const back = await server.request('POST', '/api/rooms', {
      ...waitingFor(r.body.position),
      body: { name: 'Back', visibility: 'public' },
    })
    expect(back.status).toBe(201)
  })
})
