import { type Kysely, sql, type Transaction } from 'kysely'
import pg from 'pg'
import { v7 as uuid } from 'uuid'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createKysely } from '../../adapters/postgres.ts'
import { allowTool } from '../../commands/agents.ts'
import { pipelineDeps } from '../../commands/command-context.ts'
import { recordUsage } from '../../commands/usage.ts'
import { ROLES } from '../../migrations/shared.ts'
import { join, signInAgent, signUp } from '../support/identity.ts'
import { startTestServer, type TestServer } from '../support/server.ts'

/*
 * Tenant isolation, end to end. Two orgs are seeded through the real flows until every tenant table holds
 * rows of both; then a user of org A goes after org B's rows through the API (404 everywhere) and straight
 * in SQL, on the server's own connections, as the read API's role and as the projector's role bound to A,
 * and as the login itself after RESET ROLE (nothing read, nothing changed). Catalog tests fail when any table
 * with a tenant_id lacks forced row-level security, when the server's login could bypass it, or when a table
 * outside it is reachable by a role the README does not say needs it.
 */

let server: TestServer
/** The server's own pool: its login, ROLES.app. */
let db: Kysely<any>
/** The owner (the test cluster's superuser): the catalog and the rows as they are, whatever RLS hides. */
let owner: Kysely<any>

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
  proposalId: string
  text: string
  artifactId: string
  recurringTaskId: string
  questionId: string
  threadId: string
  runId: string
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
  // A role prompt proposal by the agent (tenant.agent_role_prompt_proposals; tenant.agents and its versions come with it).
  const proposal = await ok(
    server.request('POST', `/api/agents/${agent.agentId}/role-prompt/proposals`, as(agent, { rolePrompt: text })),
    201,
  )
  const artifact = await ok(
    server.request(
      'POST',
      '/api/artifacts',
      as(owner, { kind: 'report', title: `${name} report`, roomId: room.roomId, content: text }),
    ),
    201,
  )
  // A recurring task (tenant.tasks, task_schedules) with a question to the member (tenant.action_items).
  const recurring = await ok(
    server.request('POST', '/api/tasks', as(owner, { title: `${name} chores`, roomId: room.roomId })),
    201,
  )
  await ok(
    server.request('PUT', `/api/tasks/${recurring.taskId}/schedule`, as(owner, { dailyAtUtc: '09:00', instructions: text })),
  )
  // A task it depends on (tenant.task_dependencies), watched by the member (tenant.task_people).
  const prerequisite = await ok(
    server.request('POST', '/api/tasks', as(owner, { title: `${name} prerequisite`, roomId: room.roomId })),
    201,
  )
  await ok(server.request('POST', `/api/tasks/${recurring.taskId}/dependencies`, as(owner, { taskId: prerequisite.taskId })))
  await ok(server.request('PUT', `/api/tasks/${recurring.taskId}/watchers/${member.userId}`, as(owner)))
  const question = await ok(
    server.request('POST', `/api/tasks/${recurring.taskId}/questions`, as(owner, { toUserId: member.userId, text })),
    201,
  )
  // The agent mentioned in the room (tenant.agent_threads, agent_runs, agent_run_items, agent_run_groups): with no
  // model configured here its run fails, saying so in an error item.
  await ok(server.request('POST', `/api/rooms/${room.roomId}/members`, as(owner, { agentId: agent.agentId })))
  await ok(server.request('POST', `/api/rooms/${room.roomId}/messages`, as(owner, { text: `@${agent.username} ${text}` })), 201)
  let run: { threadId: string; runId: string } | null = null
  for (const deadline = Date.now() + 20_000; !run && Date.now() < deadline; await new Promise((r) => setTimeout(r, 50))) {
    const threads = await ok(server.request('GET', `/api/threads?roomId=${room.roomId}`, as(owner)))
    const thread = threads.items[0]
    if (!thread) continue
    const detail = await ok(server.request('GET', `/api/threads/${thread.id}`, as(owner)))
    const failed = detail.runs.find((r: { status: string }) => r.status === 'failed')
    if (failed) run = { threadId: thread.id, runId: failed.id }
  }
  expect(run, 'the mention’s run failed for want of a model').not.toBeNull()
  // A room cap (tenant.usage_caps) and a usage record (tenant.usage_records), recorded as the agents worker does.
  await ok(server.request('PUT', '/api/limits', as(owner, { scope: 'room', scopeId: room.roomId, usd: 5 })))
  const asService = {
    tenantId: owner.orgId,
    actor: { type: 'service', id: 'tenancy' },
    correlationId: uuid(),
    causationId: null,
    now: () => new Date(),
    newId: uuid,
  } as const
  // A tool the agent may use in the room without asking (tenant.agent_allowed_tools), as approving with alwaysAllow records it.
  await allowTool(pipelineDeps(server.services), asService, {
    agentId: agent.agentId,
    roomId: room.roomId,
    tool: 'delete_task',
    allowed: true,
    actor: { userId: owner.userId, role: 'owner' },
  })
  await recordUsage(pipelineDeps(server.services), asService, {
    orgId: owner.orgId,
    recordId: uuid(),
    reservationId: null,
    agentId: agent.agentId,
    roomId: room.roomId,
    taskId: null,
    usage: { kind: 'storage', bytes: 1_000, minutes: 60 },
  })
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
    proposalId: proposal.proposalId as string,
    text,
    artifactId: artifact.artifactId,
    recurringTaskId: recurring.taskId,
    questionId: question.questionId,
    threadId: run!.threadId,
    runId: run!.runId,
  }
}

beforeAll(async () => {
  server = await startTestServer()
  db = server.services.db
  owner = createKysely(new pg.Pool({ connectionString: server.database.url, max: 2 }))
  A = await seed('Alpha Corp', 'alpha')
  B = await seed('Beta Corp', 'beta')
  // Every read model has caught up with everything seeded.
  const head = await server.services.store.headPosition()
  await server.services.waiter.waitFor(
    server.services.projectors.map((p) => p.name),
    BigInt(head.sequence),
  )
}, 120_000)
afterAll(async () => {
  await owner?.destroy()
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
     order by 1, 2`.execute(owner)
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
         where n.nspname = ${schema} and c.relname = ${table}`.execute(owner)
      const policies = await sql<{ cmd: string; qual: string | null; check: string | null }>`
        select cmd, qual, with_check as check from pg_policies where schemaname = ${schema} and tablename = ${table}`.execute(
        owner,
      )
      const covered = policies.rows.some(
        (p) => p.cmd === 'ALL' && p.qual?.includes('app.tenant_id') && p.check?.includes('app.tenant_id'),
      )
      if (!rel.rows[0]?.rls || !rel.rows[0]?.forced || !covered) unsafe.push(`${schema}.${table}`)
    }
    expect(unsafe, 'tables with a tenant_id but without forced RLS and a tenant policy').toEqual([])
  })

  it('the server logs in as the app login, which is no superuser, has no BYPASSRLS and owns nothing', async () => {
    const login = await sql<{ name: string }>`select current_user as name`.execute(db)
    expect(login.rows[0]!.name).toBe(ROLES.app)
    const logins = [login.rows[0]!.name]
    const r = await sql<{ name: string; super: boolean; bypass: boolean; createrole: boolean; canlogin: boolean }>`
      select rolname as name, rolsuper as super, rolbypassrls as bypass, rolcreaterole as createrole, rolcanlogin as canlogin
        from pg_roles where rolname = any(${[...logins, ROLES.reader, ROLES.projector, ROLES.draftWriter]}::text[])`.execute(
      owner,
    )
    expect(r.rows).toHaveLength(4)
    for (const role of r.rows) expect(role, role.name).toMatchObject({ super: false, bypass: false, createrole: false })
    // Only the server's login logs in; the roles it switches to do not.
    expect(r.rows.filter((x) => x.canlogin).map((x) => x.name)).toEqual(logins)
    // Nor may they become (SET ROLE) or inherit a role that could.
    const reachable = await sql<{ login: string; role: string }>`
      select l.rolname as login, m.rolname as role from pg_roles l, pg_roles m
       where l.rolname = any(${[...logins, ROLES.reader, ROLES.projector, ROLES.draftWriter]}::text[])
         and pg_has_role(l.oid, m.oid, 'MEMBER') and (m.rolsuper or m.rolbypassrls)`.execute(owner)
    expect(reachable.rows).toEqual([])
    // An owner may switch RLS off (or FORCE off): not one relation, in any schema, belongs to them.
    const owned = await sql<{ rel: string }>`
      select n.nspname || '.' || c.relname as rel from pg_class c join pg_namespace n on n.oid = c.relnamespace
       where pg_has_role(${ROLES.app}::name, c.relowner, 'MEMBER')
          or c.relowner in (select oid from pg_roles where rolname in (${ROLES.reader}, ${ROLES.projector}))`.execute(owner)
    expect(owned.rows).toEqual([])
  })

  it('every table outside forced RLS is reachable only by the roles that need it (README: Tenancy in Postgres)', async () => {
    // s select, i insert, u update, d delete. Tenant tables (tenant_id, forced RLS) are checked by rule below.
    const decided: Record<string, { app: string; reader: string; projector: string }> = {
      // Every tenant's events: commands, authentication and projectors read them as the login; the roles of a
      // tenant transaction never do.
      'eventstore.events': { app: 'si', reader: '', projector: '' },
      'control.orgs': { app: 's', reader: 's', projector: 'siud' },
      'control.memberships': { app: 's', reader: '', projector: 'siud' },
      'control.replay_cache': { app: 'siud', reader: '', projector: '' },
      'control.idempotency_keys': { app: 'siud', reader: '', projector: '' },
      // The app parks a tenant projector's event in a control database of its own, and unparks it on a retry.
      'control.parked_events': { app: 'siud', reader: '', projector: 'siud' },
      'control.data_keys': { app: 'siu', reader: '', projector: '' },
      'control.dev_mail': { app: 'si', reader: '', projector: '' },
      'control.sent_mail': { app: 'si', reader: '', projector: '' },
      // Durable timers, written by their projector; the timer runner (the app's login) polls them for due ones.
      'control.timers': { app: 's', reader: '', projector: 'siud' },
      'control.agent_run_queue': { app: 's', reader: '', projector: 'siud' },
      // The agent-task-waits processor's own index of the tasks threads wait for, kept as the login.
      'control.agent_task_waits': { app: 'sid', reader: '', projector: '' },
      // Who operates the platform (for listing; the operators stream decides), written by its projector.
      'control.operators': { app: 's', reader: '', projector: 'siud' },
      'control.projection_checkpoints': { app: 'si', reader: 's', projector: 'siud' },
      // The processors runtime keeps its checkpoints and leases as the login (no tenant data in either).
      'control.processor_checkpoints': { app: 'siud', reader: '', projector: '' },
      'control.processor_leases': { app: 'siud', reader: '', projector: '' },
      'tenant.projection_checkpoints': { app: 'si', reader: 's', projector: 'siud' },
      'realtime.user_heads': { app: 'siud', reader: '', projector: '' },
      'realtime.user_events': { app: 'siud', reader: '', projector: '' },
      'realtime.event_queues': { app: 'siud', reader: '', projector: '' },
      'realtime.outbox_events': { app: 'siud', reader: '', projector: 'i' },
      'realtime.outbox': { app: 'siud', reader: '', projector: 'i' },
      'realtime.outbox_heads': { app: 'siud', reader: '', projector: '' },
    }
    const { rows } = await sql<{
      name: string
      tenant: boolean
      forced: boolean
      app: string
      reader: string
      projector: string
    }>`
      with t as (
        select c.oid, n.nspname || '.' || c.relname as name, c.relforcerowsecurity and c.relrowsecurity as forced,
               exists (select from pg_attribute a where a.attrelid = c.oid and a.attname = 'tenant_id' and not a.attisdropped) as tenant
          from pg_class c join pg_namespace n on n.oid = c.relnamespace
         where n.nspname in ('eventstore', 'control', 'tenant', 'realtime') and c.relkind in ('r', 'p', 'v', 'm')
      )
      select t.name, t.tenant, t.forced,
             ${sql.join(
               (['app', 'reader', 'projector'] as const).map(
                 (k) => sql`concat(
                   case when has_table_privilege(${ROLES[k]}::name, t.oid, 'SELECT') then 's' end,
                   case when has_table_privilege(${ROLES[k]}::name, t.oid, 'INSERT') then 'i' end,
                   case when has_table_privilege(${ROLES[k]}::name, t.oid, 'UPDATE') then 'u' end,
                   case when has_table_privilege(${ROLES[k]}::name, t.oid, 'DELETE') then 'd' end) as ${sql.id(k)}`,
               ),
             )}
        from t order by 1`.execute(owner)
    const wrong: string[] = []
    for (const r of rows) {
      const has = { app: r.app, reader: r.reader, projector: r.projector }
      if (r.name.endsWith('.kysely_migration') || r.name.endsWith('.kysely_migration_lock')) {
        if (Object.values(has).some(Boolean)) wrong.push(`${r.name}: the migrator's own, granted ${JSON.stringify(has)}`)
      } else if (r.tenant && r.forced) {
        // Row-level security binds every role to one tenant; the login itself reads no tenant table.
        if (has.app !== '' || has.reader !== 's') wrong.push(`${r.name}: tenant table granted ${JSON.stringify(has)}`)
      } else if (!decided[r.name]) {
        wrong.push(`${r.name}: undecided (no forced RLS): say who needs it, here and in the README`)
      } else if (JSON.stringify(has) !== JSON.stringify(decided[r.name])) {
        wrong.push(`${r.name}: granted ${JSON.stringify(has)}, decided ${JSON.stringify(decided[r.name])}`)
      }
    }
    expect(wrong).toEqual([])
    expect(rows.map((r) => r.name)).toEqual(expect.arrayContaining(['eventstore.events', 'realtime.user_events']))
  })
})

describe('a user of org A gets nothing of org B', () => {
  it('both orgs have rows in every tenant table (the checks below are not vacuous)', async () => {
    const empty: string[] = []
    for (const { schema, table } of await tenantTables()) {
      for (const org of [A, B]) {
        const n = await sql<{
          n: string
        }>`select count(*)::text as n from ${sql.table(`${schema}.${table}`)} where tenant_id = ${org.orgId}`.execute(owner)
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

  it('in SQL as the server’s login after RESET ROLE: not one of B’s rows, nor a way to switch RLS off', async () => {
    const reached: string[] = []
    for (const { schema, table } of await tenantTables()) {
      const t = sql.table(`${schema}.${table}`)
      // What a statement smuggled into a read API transaction could do: drop the role the transaction switched to.
      for (const drop of [sql`reset role`, sql`set role none`]) {
        const seen = await as(ROLES.reader, A.orgId, async (trx) => {
          await drop.execute(trx)
          return (await sql<{ n: string }>`select count(*)::text as n from ${t} where tenant_id = ${B.orgId}`.execute(trx))
            .rows[0]!.n
        }).catch((e: { code?: string }) => e.code ?? 'error')
        // 42501: the login itself is granted no tenant table (and were it, RLS would bind it to A).
        if (seen !== '42501' && seen !== '0') reached.push(`${schema}.${table}: ${seen} of B's rows`)
      }
      const off = await sqlState(
        as(ROLES.reader, A.orgId, async (trx) => {
          await sql`reset role`.execute(trx)
          await sql`alter table ${t} no force row level security`.execute(trx)
        }),
      )
      if (off !== '42501') reached.push(`${schema}.${table}: FORCE ROW LEVEL SECURITY dropped (${off ?? 'no error'})`)
    }
    expect(reached).toEqual([])
  })

  it('in SQL as the projector’s role bound to A: B’s rows are neither changed nor deleted, nor written into', async () => {
    for (const { schema, table } of await tenantTables()) {
      const t = sql.table(`${schema}.${table}`)
      const name = `${schema}.${table}`
      const changed = await as(ROLES.projector, A.orgId, async (trx) => {
        const u = await sql`update ${t} set tenant_id = tenant_id where tenant_id = ${B.orgId}`.execute(trx)
        const d = await sql`delete from ${t} where tenant_id = ${B.orgId}`.execute(trx)
        throw Object.assign(new Error('rollback'), { result: [u.numAffectedRows, d.numAffectedRows] })
      }).catch((e: { result?: unknown; code?: string }) => e.result ?? e.code)
      // A table no projector writes (drafts, written by their command) refuses the projector outright.
      expect(changed, name).toEqual(table === 'drafts' ? '42501' : [0n, 0n])
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
        owner,
      )
      const columns = await sql<{ name: string }>`
        select column_name as name from information_schema.columns
         where table_schema = ${schema} and table_name = ${table} and is_generated = 'NEVER' order by ordinal_position`.execute(
        owner,
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
    }>`select count(*)::text as n from tenant.messages where tenant_id = ${B.orgId}`.execute(owner)
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
      ['GET', `/api/agents/${B.agentId}`],
      ['PATCH', `/api/agents/${B.agentId}`, { model: null }],
      ['PUT', `/api/agents/${B.agentId}/role-prompt`, { rolePrompt: 'mine now' }],
      ['GET', `/api/agents/${B.agentId}/role-prompt/versions`],
      ['GET', `/api/agents/${B.agentId}/role-prompt/proposals`],
      ['POST', `/api/agents/${B.agentId}/role-prompt/proposals`, { rolePrompt: 'x' }],
      ['POST', `/api/agents/${B.agentId}/role-prompt/proposals/${B.proposalId}/accept`],
      ['POST', `/api/agents/${B.agentId}/role-prompt/proposals/${B.proposalId}/reject`, {}],
      ['GET', `/api/agents/${B.agentId}/allowed-tools`],
      ['DELETE', `/api/agents/${B.agentId}/allowed-tools/${B.roomId}/delete_task`],
      ['DELETE', `/api/agents/${A.agentId}/allowed-tools/${B.roomId}/delete_task`],
      ['POST', '/api/dms', { userId: B.userId }],
      ['GET', `/api/artifacts/${B.artifactId}`],
      ['PATCH', `/api/artifacts/${B.artifactId}`, { title: 'mine now' }],
      ['DELETE', `/api/artifacts/${B.artifactId}`],
      ['POST', '/api/artifacts', { kind: 'report', title: 'x', roomId: B.roomId, content: 'x' }],
      ['GET', `/api/tasks/${B.recurringTaskId}/schedule`],
      ['PUT', `/api/tasks/${B.recurringTaskId}/schedule`, { dailyAtUtc: '10:00' }],
      ['POST', `/api/tasks/${B.recurringTaskId}/schedule/resume`],
      ['POST', `/api/tasks/${B.recurringTaskId}/schedule/run-now`],
      ['GET', `/api/tasks/${B.recurringTaskId}/messages`],
      ['POST', `/api/tasks/${B.recurringTaskId}/messages`, { text: 'hello' }],
      ['POST', `/api/tasks/${B.recurringTaskId}/questions`, { toUserId: A.userId, text: 'x' }],
      ['POST', `/api/questions/${B.questionId}/answer`, { text: 'x' }],
      ['GET', `/api/threads/${B.threadId}`],
      ['POST', `/api/threads/${B.threadId}/runs`, { input: 'x' }],
      ['GET', `/api/runs/${B.runId}/items`],
      ['POST', `/api/runs/${B.runId}/cancel`],
      ['POST', `/api/runs/${B.runId}/approvals`, { toolCallId: 'x', decision: 'approve' }],
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
      [
        '/api/users?limit=200',
        '/api/rooms',
        '/api/spaces',
        `/api/search/messages?q=${encodeURIComponent('secret plans')}`,
        '/api/artifacts',
        '/api/action-items',
        '/api/agents',
      ].map((p) => server.request('GET', p, { token: A.token })),
    )
    for (const r of bodies) expect(r.status).toBe(200)
    const text = JSON.stringify(bodies.map((r) => r.body))
    for (const id of [B.userId, B.memberId, B.roomId, B.spaceId, B.messageId, B.agentId, B.orgId, B.artifactId])
      expect(text).not.toContain(id)
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
