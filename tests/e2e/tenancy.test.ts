import { type Kysely, sql, type Transaction } from 'kysely'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ROLES } from '../../migrations/shared.ts'
import { join, signInAgent, signUp } from '../support/identity.ts'
import { startTestServer, type TestServer } from '../support/server.ts'

/*
 * Tenant isolation, end to end. Two orgs are seeded through the real flows until every tenant table holds
 * rows of both; then a user of org A goes after org B's rows through the API (404 everywhere) and straight
 * in SQL as the read API's role and as the projector's role bound to A (nothing read, nothing changed).
 * A catalog test fails when any table with a tenant_id lacks forced row-level security.
 */

let server: TestServer
let db: Kysely<any>

type Org = {
  orgId: string
  token: string
  userId: string
  memberId: string
  spaceId: string
  roomId: string
  messageId: string
  inviteId: string
  agentId: string
  text: string
}
let A: Org
let B: Org

async function seed(name: string, slug: string): Promise<Org> {
  const owner = await signUp(server, { email: `owner@${slug}.test`, orgName: name, username: `${slug}-owner` })
  const member = await join(server, owner.token, { email: `member@${slug}.test`, role: 'member', username: `${slug}-member` })
  const as = (who: { token: string }, body?: unknown) => ({ token: who.token, ...(body === undefined ? {} : { body }) })
  const ok = async (p: Promise<{ status: number; body: any }>, status = 200) => {
    const r = await p
    expect(r.status, JSON.stringify(r.body)).toBe(status)
    return r.body
  }
  const space = await ok(server.request('POST', '/api/spaces', as(owner, { name: `${name} space` })), 201)
  const room = await ok(server.request('POST', '/api/rooms', as(owner, { name: `${name} room`, visibility: 'private' })), 201)
  await ok(server.request('POST', `/api/rooms/${room.roomId}/members`, as(owner, { userId: member.userId })))
  const text = `secret plans of ${slug}`
  const message = await ok(server.request('POST', `/api/rooms/${room.roomId}/messages`, as(owner, { text })), 201)
  await ok(server.request('PATCH', `/api/messages/${message.messageId}`, as(owner, { text: `${text} (edited)` })))
  await ok(server.request('PUT', `/api/messages/${message.messageId}/reactions/tada`, as(member)))
  await ok(server.request('PUT', `/api/rooms/${room.roomId}/draft`, as(member, { text: 'half a thought' })))
  await ok(server.request('POST', `/api/rooms/${room.roomId}/read`, as(member, { messageId: message.messageId })))
  const invite = await ok(server.request('POST', '/api/invites', as(owner, { email: `later@${slug}.test`, role: 'guest' })), 201)
  const agent = await signInAgent(server, owner.token, { name: `${name} bot` })
  return {
    orgId: owner.orgId,
    token: owner.token,
    userId: owner.userId,
    memberId: member.userId,
    spaceId: space.spaceId,
    roomId: room.roomId,
    messageId: message.messageId,
    inviteId: invite.inviteId,
    agentId: agent.agentId,
    text,
  }
}

beforeAll(async () => {
  server = await startTestServer()
  db = server.services.db
  A = await seed('Alpha Corp', 'alpha')
  B = await seed('Beta Corp', 'beta')
  // Every read model has caught up with everything seeded.
  const head = await server.services.store.headPosition()
  await server.services.waiter.waitFor(
    server.services.projectors.map((p) => p.name),
    BigInt(head.prepare),
  )
}, 120_000)
afterAll(async () => {
  await server?.close()
})

/** Every table outside the event store that has a tenant_id column. */
async function tenantTables(): Promise<{ schema: string; table: string }[]> {
  const r = await sql<{ schema: string; table: string }>`
    select c.table_schema as schema, c.table_name as table
      from information_schema.columns c
      join information_schema.tables t on t.table_schema = c.table_schema and t.table_name = c.table_name
     where c.column_name = 'tenant_id' and t.table_type = 'BASE TABLE'
       and c.table_schema not in ('eventstore', 'pg_catalog', 'information_schema')
     order by 1, 2`.execute(db)
  return r.rows
}

/** One transaction as `role`, bound to `tenantId` the way the read API and the projectors bind it. */
function as<T>(role: string, tenantId: string | null, fn: (trx: Transaction<any>) => Promise<T>): Promise<T> {
  return db.transaction().execute(async (trx) => {
    await sql`select set_config('role', ${role}, true)`.execute(trx)
    if (tenantId) await sql`select set_config('app.tenant_id', ${tenantId}, true)`.execute(trx)
    return fn(trx)
  })
}

const sqlState = async (p: Promise<unknown>): Promise<string | null> =>
  p.then(
    () => null,
    (e: { code?: string }) => e.code ?? 'error',
  )

describe('row-level security in the catalog', () => {
  it('every table with a tenant_id has RLS enabled and forced, with USING and WITH CHECK', async () => {
    const tables = await tenantTables()
    expect(tables.map((t) => `${t.schema}.${t.table}`)).toEqual(
      expect.arrayContaining(['tenant.users', 'tenant.invites', 'tenant.rooms', 'tenant.messages']),
    )
    const unsafe: string[] = []
    for (const { schema, table } of tables) {
      const rel = await sql<{ rls: boolean; forced: boolean }>`
        select c.relrowsecurity as rls, c.relforcerowsecurity as forced
          from pg_class c join pg_namespace n on n.oid = c.relnamespace
         where n.nspname = ${schema} and c.relname = ${table}`.execute(db)
      const policies = await sql<{ cmd: string; qual: string | null; check: string | null }>`
        select cmd, qual, with_check as check from pg_policies where schemaname = ${schema} and tablename = ${table}`.execute(db)
      const covered = policies.rows.some(
        (p) => p.cmd === 'ALL' && p.qual?.includes('app.tenant_id') && p.check?.includes('app.tenant_id'),
      )
      if (!rel.rows[0]?.rls || !rel.rows[0]?.forced || !covered) unsafe.push(`${schema}.${table}`)
    }
    expect(unsafe, 'tables with a tenant_id but without forced RLS and a tenant policy').toEqual([])
  })

  it('the application roles can neither bypass RLS nor act as superusers', async () => {
    const r = await sql<{ name: string; super: boolean; bypass: boolean }>`
      select rolname as name, rolsuper as super, rolbypassrls as bypass from pg_roles where rolname in (${ROLES.reader}, ${ROLES.projector})`.execute(
      db,
    )
    expect(r.rows).toHaveLength(2)
    for (const role of r.rows) expect(role, role.name).toMatchObject({ super: false, bypass: false })
    // Nor do they inherit a role that could.
    const inherited = await sql<{ name: string }>`
      select m.rolname as name from pg_auth_members am
        join pg_roles r on r.oid = am.member join pg_roles m on m.oid = am.roleid
       where r.rolname in (${ROLES.reader}, ${ROLES.projector}) and (m.rolsuper or m.rolbypassrls)`.execute(db)
    expect(inherited.rows).toEqual([])
  })
})

describe('a user of org A gets nothing of org B', () => {
  it('both orgs have rows in every tenant table (the checks below are not vacuous)', async () => {
    const empty: string[] = []
    for (const { schema, table } of await tenantTables()) {
      for (const org of [A, B]) {
        const n = await sql<{
          n: string
        }>`select count(*)::text as n from ${sql.table(`${schema}.${table}`)} where tenant_id = ${org.orgId}`.execute(db)
        if (n.rows[0]!.n === '0') empty.push(`${schema}.${table} (${org === A ? 'A' : 'B'})`)
      }
    }
    expect(empty).toEqual([])
  })

  it('in SQL as the read API’s role: B’s rows are invisible, and nothing can be written', async () => {
    for (const { schema, table } of await tenantTables()) {
      const t = sql.table(`${schema}.${table}`)
      const name = `${schema}.${table}`
      const seen = await as(ROLES.reader, A.orgId, async (trx) => {
        const b = await sql<{ n: string }>`select count(*)::text as n from ${t} where tenant_id = ${B.orgId}`.execute(trx)
        const all = await sql<{ n: string }>`select count(distinct tenant_id)::text as n from ${t}`.execute(trx)
        return { b: b.rows[0]!.n, tenants: all.rows[0]!.n }
      })
      expect(seen, name).toEqual({ b: '0', tenants: '1' })
      // Unbound (no app.tenant_id): nothing at all.
      const unbound = await as(ROLES.reader, null, (trx) => sql<{ n: string }>`select count(*)::text as n from ${t}`.execute(trx))
      expect(unbound.rows[0]!.n, `${name} unbound`).toBe('0')
      expect(
        await sqlState(
          as(ROLES.reader, A.orgId, (trx) =>
            sql`update ${t} set tenant_id = tenant_id where tenant_id = ${B.orgId}`.execute(trx),
          ),
        ),
        name,
      ).toBe('42501')
      expect(
        await sqlState(as(ROLES.reader, A.orgId, (trx) => sql`delete from ${t} where tenant_id = ${B.orgId}`.execute(trx))),
        name,
      ).toBe('42501')
    }
  })

  it('in SQL as the projector’s role bound to A: B’s rows are neither changed nor deleted, nor written into', async () => {
    for (const { schema, table } of await tenantTables()) {
      const t = sql.table(`${schema}.${table}`)
      const name = `${schema}.${table}`
      const changed = await as(ROLES.projector, A.orgId, async (trx) => {
        const u = await sql`update ${t} set tenant_id = tenant_id where tenant_id = ${B.orgId}`.execute(trx)
        const d = await sql`delete from ${t} where tenant_id = ${B.orgId}`.execute(trx)
        throw Object.assign(new Error('rollback'), { result: [u.numAffectedRows, d.numAffectedRows] })
      }).catch((e: { result?: unknown }) => e.result)
      expect(changed, name).toEqual([0n, 0n])
      // A's rows cannot be moved into B, and a row of B cannot be inserted.
      expect(
        await sqlState(
          as(ROLES.projector, A.orgId, (trx) =>
            sql`update ${t} set tenant_id = ${B.orgId} where tenant_id = ${A.orgId}`.execute(trx),
          ),
        ),
        name,
      ).toBe('42501')
      const rowOfB = await sql<{ r: unknown }>`select to_jsonb(x) as r from ${t} x where tenant_id = ${B.orgId} limit 1`.execute(
        db,
      )
      const columns = await sql<{ name: string }>`
        select column_name as name from information_schema.columns
         where table_schema = ${schema} and table_name = ${table} and is_generated = 'NEVER' order by ordinal_position`.execute(
        db,
      )
      const list = sql.join(columns.rows.map((c) => sql.id(c.name)))
      const insert = as(ROLES.projector, A.orgId, (trx) =>
        sql`insert into ${t} (${list}) select ${list} from jsonb_populate_record(null::${t}, ${JSON.stringify(rowOfB.rows[0]!.r)}::jsonb)`.execute(
          trx,
        ),
      )
      expect(await sqlState(insert), name).toBe('42501')
    }
    // B's rows are all still there.
    const messages = await sql<{
      n: string
    }>`select count(*)::text as n from tenant.messages where tenant_id = ${B.orgId}`.execute(db)
    expect(Number(messages.rows[0]!.n)).toBeGreaterThan(0)
  })

  it('through the API: every route of B’s rows answers 404 to A', async () => {
    const tries: [string, string, unknown?][] = [
      ['GET', `/api/rooms/${B.roomId}`],
      ['GET', `/api/rooms/${B.roomId}/messages`],
      ['GET', `/api/messages/${B.messageId}`],
      ['PATCH', `/api/rooms/${B.roomId}`, { name: 'mine now' }],
      ['POST', `/api/rooms/${B.roomId}/members`, { userId: A.userId }],
      ['DELETE', `/api/rooms/${B.roomId}/members/${B.memberId}`],
      ['POST', `/api/rooms/${B.roomId}/archive`],
      ['POST', `/api/rooms/${B.roomId}/messages`, { text: 'hello' }],
      ['PUT', `/api/rooms/${B.roomId}/draft`, { text: 'x' }],
      ['POST', `/api/rooms/${B.roomId}/read`, { messageId: B.messageId }],
      ['POST', `/api/rooms/${B.roomId}/messages/delete-range`, { fromMessageId: B.messageId }],
      ['PATCH', `/api/messages/${B.messageId}`, { text: 'rewritten' }],
      ['DELETE', `/api/messages/${B.messageId}`],
      ['PUT', `/api/messages/${B.messageId}/reactions/tada`],
      ['DELETE', `/api/messages/${B.messageId}/reactions/tada`],
      ['PATCH', `/api/spaces/${B.spaceId}`, { name: 'taken' }],
      ['PATCH', `/api/users/${B.userId}`, { role: 'guest' }],
      ['DELETE', `/api/users/${B.memberId}`],
      ['DELETE', `/api/invites/${B.inviteId}`],
      ['POST', `/api/agents/${B.agentId}/secret`, {}],
      ['POST', '/api/dms', { userId: B.userId }],
    ]
    const wrong: string[] = []
    for (const [method, path, body] of tries) {
      const r = await server.request(method, path, { token: A.token, ...(body === undefined ? {} : { body }) })
      if (r.status !== 404) wrong.push(`${method} ${path}: ${r.status} ${JSON.stringify(r.body)}`)
    }
    expect(wrong).toEqual([])
  })

  it('through the API: lists and search of A never show B', async () => {
    const bodies = await Promise.all(
      ['/api/users?limit=200', '/api/rooms', '/api/spaces', `/api/search/messages?q=${encodeURIComponent('secret plans')}`].map(
        (p) => server.request('GET', p, { token: A.token }),
      ),
    )
    for (const r of bodies) expect(r.status).toBe(200)
    const text = JSON.stringify(bodies.map((r) => r.body))
    for (const id of [B.userId, B.memberId, B.roomId, B.spaceId, B.messageId, B.agentId, B.orgId]) expect(text).not.toContain(id)
    expect(text).not.toContain(B.text)
    expect(text).toContain(A.text)
  })

  it('B’s rows are unchanged after all of it', async () => {
    const r = await server.request('GET', `/api/messages/${B.messageId}`, { token: B.token })
    expect(r.status).toBe(200)
    expect(r.body.text).toBe(`${B.text} (edited)`)
    const users = await server.request('GET', '/api/users?limit=200', { token: B.token })
    expect(users.body.items.find((u: { id: string }) => u.id === B.memberId)).toMatchObject({ status: 'active' })
    expect(users.body.items.find((u: { id: string }) => u.id === B.userId)).toMatchObject({ role: 'owner' })
  })
})
