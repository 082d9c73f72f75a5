import { randomUUID } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { auditReader } from '../../adapters/event-audit.ts'
import { join, login, signUp, tenantSession } from '../support/identity.ts'
import { bootstrapOperator, type SignedInOperator } from '../support/operator.ts'
import { OPERATOR_TOKEN, startTestServer, type TestServer } from '../support/server.ts'

/*
 * The Control API as operators use it: named accounts granted the role (the shared token only bootstraps the
 * first), orgs listed, searched, suspended, limited, given an LLM policy, and the audit of who did what.
 */

let server: TestServer
let ops: SignedInOperator
let acme: Awaited<ReturnType<typeof signUp>>
let beta: Awaited<ReturnType<typeof signUp>>

const asOps = () => ({ token: ops.accountToken })

beforeAll(async () => {
  server = await startTestServer()
  acme = await signUp(server, { email: 'owner@acme-control.test', orgName: 'Acme Control', username: 'owner' })
  beta = await signUp(server, { email: 'owner@beta-control.test', orgName: 'Beta Works', username: 'boss' })
})
afterAll(async () => {
  await server?.close()
})

describe('getting in', () => {
  it('before any operator: nobody but the bootstrap token on its one route; anonymous is 401', async () => {
    expect((await server.request('GET', '/control/orgs')).status).toBe(401)
    const refused = await server.request('GET', '/control/orgs', { token: OPERATOR_TOKEN })
    expect(refused.status).toBe(403)
    expect(refused.body.code).toBe('OPERATOR_TOKEN_BOOTSTRAP_ONLY')
    const stranger = await login(server, 'stranger@control.test')
    const notOperator = await server.request('GET', '/control/orgs', { token: stranger.accountToken })
    expect(notOperator.status).toBe(403)
    expect(notOperator.body.code).toBe('OPERATORS_ONLY')
    const nobody = await server.request('POST', '/control/operators', {
      token: OPERATOR_TOKEN,
      body: { accountId: randomUUID() },
    })
    expect(nobody.status).toBe(404)
    expect(nobody.body.code).toBe('ACCOUNT_NOT_FOUND')
  })

  it('the shared token grants the first operator, then is refused (BOOTSTRAP_CLOSED)', async () => {
    ops = await bootstrapOperator(server, 'ops@platform.test')
    const me = await server.request('GET', `/control/operators?consistentAfter=${ops.position}`, asOps())
    expect(me.status).toBe(200)
    expect(me.body.items).toEqual([{ accountId: ops.accountId, grantedBy: null, grantedAt: expect.any(String) }])
    const again = await login(server, 'second@platform.test')
    const closed = await server.request('POST', '/control/operators', {
      token: OPERATOR_TOKEN,
      body: { accountId: again.accountId },
    })
    expect(closed.status).toBe(403)
    expect(closed.body.code).toBe('BOOTSTRAP_CLOSED')
    const stillNot = await server.request('GET', '/control/orgs', { token: again.accountToken })
    expect(stillNot.status).toBe(403)
  })

  it('a tenant user’s credentials (a tenant session, the org host’s account bound to one org) are 403 on /control', async () => {
    for (const token of [acme.token, (await tenantSession(server, acme.accountToken, acme.orgId)).token]) {
      const r = await server.request('GET', '/control/orgs', { token })
      expect(r.status).toBe(403)
    }
    const garbage = await server.request('GET', '/control/orgs', { token: 'not-a-token' })
    expect(garbage.status).toBe(401)
  })

  it('an operator grants another, who acts in their own name; the last operator stays', async () => {
    const second = await login(server, 'deputy@platform.test')
    const granted = await server.request('POST', '/control/operators', { ...asOps(), body: { accountId: second.accountId } })
    expect(granted.status, JSON.stringify(granted.body)).toBe(201)
    // The deputy's own action is recorded as theirs.
    const created = await server.request('POST', '/control/orgs', { token: second.accountToken, body: { name: 'Deputy Made' } })
    expect(created.status, JSON.stringify(created.body)).toBe(201)
    const history = await server.request('GET', `/control/audit?tenant=${created.body.orgId}&type=org.created`, {
      token: second.accountToken,
    })
    expect(history.status).toBe(200)
    expect(history.body.items).toHaveLength(1)
    expect(history.body.items[0].actor).toEqual({ type: 'operator', id: second.accountId })
    // The deputy revokes the first operator, then cannot revoke themself: the last one stays.
    const revoked = await server.request('DELETE', `/control/operators/${ops.accountId}`, { token: second.accountToken })
    expect(revoked.status, JSON.stringify(revoked.body)).toBe(200)
    expect((await server.request('GET', '/control/orgs', asOps())).status).toBe(403)
    const last = await server.request('DELETE', `/control/operators/${second.accountId}`, { token: second.accountToken })
    expect(last.status).toBe(422)
    expect(last.body.code).toBe('LAST_OPERATOR')
    // And the first is granted back.
    const back = await server.request('POST', '/control/operators', {
      token: second.accountToken,
      body: { accountId: ops.accountId },
    })
    expect(back.status).toBe(201)
    expect((await server.request('GET', '/control/orgs', asOps())).status).toBe(200)
    const missing = await server.request('DELETE', `/control/operators/${randomUUID()}`, asOps())
    expect(missing.status).toBe(404)
  })
})

describe('orgs', () => {
  it('suspended: the org’s commands are 403 ORG_SUSPENDED, its reads still answer; unsuspended: commands again', async () => {
    const suspended = await server.request('POST', `/control/orgs/${acme.orgId}/suspend`, {
      ...asOps(),
      body: { reason: 'unpaid' },
    })
    expect(suspended.status).toBe(200)
    const write = await server.request('POST', `/api/spaces?consistentAfter=${suspended.body.position}`, {
      token: acme.token,
      body: { name: 'Blocked' },
    })
    expect(write.status).toBe(403)
    expect(write.body.code).toBe('ORG_SUSPENDED')
    expect((await server.request('GET', '/api/spaces', { token: acme.token })).status).toBe(200)
    const listed = await server.request(
      'GET',
      `/control/orgs?status=suspended&consistentAfter=${suspended.body.position}`,
      asOps(),
    )
    expect(listed.body.items.map((o: { id: string }) => o.id)).toEqual([acme.orgId])

    const unsuspended = await server.request('POST', `/control/orgs/${acme.orgId}/unsuspend`, asOps())
    expect(unsuspended.status).toBe(200)
    const again = await server.request('POST', `/api/spaces?consistentAfter=${unsuspended.body.position}`, {
      token: acme.token,
      body: { name: 'Open again' },
    })
    expect(again.status, JSON.stringify(again.body)).toBe(201)
    expect((await server.request('POST', `/control/orgs/${randomUUID()}/suspend`, asOps())).status).toBe(404)
  })

  it('search by part of the name or slug, any case; status; pages', async () => {
    const byName = await server.request('GET', '/control/orgs?q=CONTROL', asOps())
    expect(byName.status).toBe(200)
    expect(byName.body.items.map((o: { slug: string }) => o.slug)).toEqual([acme.slug])
    const bySlug = await server.request('GET', `/control/orgs?q=${encodeURIComponent('ta-wo')}`, asOps())
    expect(bySlug.body.items.map((o: { id: string }) => o.id)).toEqual([beta.orgId])
    // A % is a character, not a pattern.
    expect((await server.request('GET', '/control/orgs?q=%25', asOps())).body.items).toEqual([])
    const all: string[] = []
    let cursor: string | null = null
    do {
      const page: { body: { items: { id: string }[]; nextCursor: string | null } } = await server.request(
        'GET',
        `/control/orgs?limit=1${cursor ? `&cursor=${cursor}` : ''}`,
        asOps(),
      )
      all.push(...page.body.items.map((o) => o.id))
      cursor = page.body.nextCursor
    } while (cursor)
    expect(all).toContain(acme.orgId)
    expect(all).toContain(beta.orgId)
    expect(new Set(all).size).toBe(all.length)
    const bad = await server.request('GET', '/control/orgs?status=gone', asOps())
    expect(bad.status).toBe(400)
  })

  it('seats: not below the people active now (422 naming both); a join past them is 422 SEAT_LIMIT_REACHED', async () => {
    const bob = await join(server, beta.token, { email: 'bob@beta-control.test', role: 'member', username: 'bob' })
    // Two people now (the owner and bob); an agent takes no seat.
    const agent = await server.request('POST', '/api/agents', {
      token: beta.token,
      body: { name: 'Helper', rolePrompt: 'helps' },
    })
    expect(agent.status).toBe(201)
    const below = await server.request('PUT', `/control/orgs/${beta.orgId}/limits`, {
      ...asOps(),
      body: { seats: 1, storageBytes: null },
    })
    expect(below.status).toBe(422)
    expect(below.body.code).toBe('SEATS_BELOW_USAGE')
    expect(below.body.detail).toMatch(/\b1\b.*\b2\b/)
    const set = await server.request('PUT', `/control/orgs/${beta.orgId}/limits`, {
      ...asOps(),
      body: { seats: 2, storageBytes: 5_000_000_000 },
    })
    expect(set.status).toBe(200)
    const detail = await server.request('GET', `/control/orgs/${beta.orgId}?consistentAfter=${set.body.position}`, asOps())
    expect(detail.body).toMatchObject({ limits: { seats: 2, storageBytes: 5_000_000_000 }, seatsInUse: 2 })

    const invite = await server.request('POST', '/api/invites', {
      token: beta.token,
      body: { email: 'carol@beta-control.test', role: 'member' },
    })
    expect(invite.status).toBe(201)
    const carol = await login(server, 'carol@beta-control.test')
    const full = await server.request('POST', `/orgs/invites/${invite.body.token}/accept`, { token: carol.accountToken })
    expect(full.status).toBe(422)
    expect(full.body.code).toBe('SEAT_LIMIT_REACHED')
    // A seat freed (bob leaves) is taken by the next person.
    const removed = await server.request('DELETE', `/api/users/${bob.userId}`, { token: beta.token })
    expect(removed.status).toBe(200)
    const accepted = await server.request('POST', `/orgs/invites/${invite.body.token}/accept`, { token: carol.accountToken })
    expect(accepted.status, JSON.stringify(accepted.body)).toBe(200)
    const bad = await server.request('PUT', `/control/orgs/${beta.orgId}/limits`, {
      ...asOps(),
      body: { seats: -1, storageBytes: 'x' },
    })
    expect(bad.status).toBe(400)
    expect(bad.body.errors.map((e: { path: string }) => e.path).sort()).toEqual(['seats', 'storageBytes'])
  })

  it('the LLM policy: set by an operator, shown to them and to the org’s admins, not its members', async () => {
    const policy = { allowedModels: ['gpt-5', 'claude-sonnet-4'], keySource: 'org', monthlyTokenBudget: 2_000_000 }
    const set = await server.request('PUT', `/control/orgs/${acme.orgId}/llm-policy`, { ...asOps(), body: policy })
    expect(set.status, JSON.stringify(set.body)).toBe(200)
    const shown = await server.request('GET', `/control/orgs/${acme.orgId}?consistentAfter=${set.body.position}`, asOps())
    expect(shown.body.llmPolicy).toEqual(policy)
    expect((await server.request('GET', `/control/orgs/${beta.orgId}`, asOps())).body.llmPolicy).toBeNull()
    const toAdmin = await server.request('GET', `/api/org/llm-policy?consistentAfter=${set.body.position}`, { token: acme.token })
    expect(toAdmin.status).toBe(200)
    expect(toAdmin.body).toEqual({ policy })
    const member = await join(server, acme.token, { email: 'member@acme-control.test', role: 'member', username: 'member' })
    expect((await server.request('GET', '/api/org/llm-policy', { token: member.token })).status).toBe(403)
    // Another org's admin sees their own org's (none).
    expect((await server.request('GET', '/api/org/llm-policy', { token: beta.token })).body).toEqual({ policy: null })
    const bad = await server.request('PUT', `/control/orgs/${acme.orgId}/llm-policy`, {
      ...asOps(),
      body: { allowedModels: 'gpt-5', keySource: 'mine', monthlyTokenBudget: -5 },
    })
    expect(bad.status).toBe(400)
    const unknown = await server.request('PUT', `/control/orgs/${randomUUID()}/llm-policy`, { ...asOps(), body: policy })
    expect(unknown.status).toBe(404)
  })
})

describe('the audit', () => {
  type Item = {
    id: string
    stream: string
    type: string
    position: number
    tenantId: string
    actor: { type: string; id: string }
    data: Record<string, unknown>
  }
  const audit = async (query: string): Promise<{ items: Item[]; nextCursor: string | null; plan: string }> => {
    const r = await server.request('GET', `/control/audit?${query}`, asOps())
    expect(r.status, JSON.stringify(r.body)).toBe(200)
    return r.body
  }

  it('one tenant’s events, through the tenant index, never another’s; each with its actor and causes', async () => {
    const acmeHistory = await audit(`tenant=${acme.orgId}&limit=200`)
    expect(acmeHistory.plan).toBe('tenant index')
    expect(acmeHistory.items.length).toBeGreaterThan(3)
    expect(acmeHistory.items.every((e) => e.tenantId === acme.orgId)).toBe(true)
    const betaIds = new Set((await audit(`tenant=${beta.orgId}&limit=200`)).items.map((e) => e.id))
    expect(acmeHistory.items.some((e) => betaIds.has(e.id))).toBe(false)
    // The reader the route uses reads the tenant index, not $all.
    const reader = auditReader(server.services.store, { tenantId: acme.orgId }, { tenantIndex: server.services.pools.events })
    expect(reader.plan).toBe('tenant index')
    const suspension = acmeHistory.items.find((e) => e.type === 'org.suspended')!
    expect(suspension).toMatchObject({ actor: { type: 'operator', id: ops.accountId }, stream: `org-${acme.orgId}` })
    expect(suspension).toHaveProperty('correlationId')
    expect(suspension).toHaveProperty('causationId')
    // Positions ascend.
    const positions = acmeHistory.items.map((e) => e.position)
    expect([...positions].sort((a, b) => a - b)).toEqual(positions)
  })

  it('filters by type (a prefix too), actor, stream and time; personal fields are withheld', async () => {
    const byType = await audit(`tenant=${acme.orgId}&type=org.suspended,org.reactivated`)
    expect(byType.items.map((e) => e.type)).toEqual(['org.suspended', 'org.reactivated'])
    const byPrefix = await audit(`tenant=${acme.orgId}&type=${encodeURIComponent('org.*')}`)
    expect(byPrefix.items.every((e) => e.type.startsWith('org.'))).toBe(true)
    expect(byPrefix.items.map((e) => e.type)).toContain('org.llm_policy_set')
    const byActor = await audit(`tenant=${acme.orgId}&actor=${encodeURIComponent(`operator:${ops.accountId}`)}`)
    expect(byActor.items.length).toBeGreaterThan(0)
    expect(byActor.items.every((e) => e.actor.id === ops.accountId)).toBe(true)
    const stream = await audit(`stream=org-${beta.orgId}&type=org.limits_set`)
    expect(stream.plan).toBe('stream')
    expect(stream.items.map((e) => e.data.seats)).toEqual([2])
    const future = await audit(`tenant=${acme.orgId}&from=${encodeURIComponent(new Date(Date.now() + 3_600_000).toISOString())}`)
    expect(future.items).toEqual([])
    const past = await audit(`tenant=${acme.orgId}&to=2000-01-01T00:00:00Z`)
    expect(past.items).toEqual([])
    const joined = (await audit(`tenant=${acme.orgId}&type=user.joined`)).items
    expect(joined.length).toBeGreaterThan(0)
    for (const e of joined) {
      expect(e.data.email).toBe('[withheld]')
      expect(e.data.displayName).toBe('[withheld]')
      expect(JSON.stringify(e.data)).not.toContain('acme-control.test')
    }
    const inverted = await server.request('GET', '/control/audit?from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z', asOps())
    expect(inverted.status).toBe(400)
    const badCursor = await server.request('GET', '/control/audit?cursor=nope', asOps())
    expect(badCursor.status).toBe(400)
  })

  it('pages with an opaque cursor: every event once, in order', async () => {
    const whole = await audit(`tenant=${acme.orgId}&limit=200`)
    const paged: Item[] = []
    let cursor: string | null = null
    do {
      const page = await audit(`tenant=${acme.orgId}&limit=3${cursor ? `&cursor=${cursor}` : ''}`)
      expect(page.items.length).toBeLessThanOrEqual(3)
      paged.push(...page.items)
      cursor = page.nextCursor
    } while (cursor)
    expect(paged.map((e) => e.id)).toEqual(whole.items.map((e) => e.id))
    // The whole platform's history pages the same way ($all).
    const first = await audit('limit=2')
    expect(first.plan).toBe('$all scan')
    expect(first.nextCursor).not.toBeNull()
    const next = await audit(`limit=2&cursor=${first.nextCursor}`)
    expect(next.items[0]!.position).toBeGreaterThan(first.items[1]!.position)
  })
})
