import { sql } from 'kysely'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type AnyDb, createKysely, createPool } from '../../adapters/postgres.ts'
import { deleteUserDrafts } from '../../commands/drafts.ts'
import { ROLES } from '../../migrations/shared.ts'
import { messagesProjector } from '../../projections/messages.ts'
import { rebuild } from '../../projections/rebuild.ts'
import { join, signUp } from '../support/identity.ts'
import { eventCount, startTestServer, type TestServer } from '../support/server.ts'

let server: TestServer
/** The database's owner login: raw SQL over every table, whatever the app's login may read. */
let owner: AnyDb
let alice: Awaited<ReturnType<typeof signUp>>
let bob: Awaited<ReturnType<typeof join>>
let carol: Awaited<ReturnType<typeof join>>
let mallory: Awaited<ReturnType<typeof signUp>>
/** Where the rooms' setup stands: reads of the rooms wait for it (a loaded projector may lag the commands). */
let settled = 0
let privateRoom: string
let publicRoom: string

beforeAll(async () => {
  server = await startTestServer()
  owner = createKysely(createPool(server.database.url))
  alice = await signUp(server, { email: 'alice@drafts.test', orgName: 'Drafts Inc', username: 'alice' })
  bob = await join(server, alice.token, { email: 'bob@drafts.test', role: 'member', username: 'bob' })
  carol = await join(server, alice.token, { email: 'carol@drafts.test', role: 'member', username: 'carol' })
  mallory = await signUp(server, { email: 'mallory@evil.test', orgName: 'Evil Drafts', username: 'mallory' })
  const room = async (name: string, visibility: 'private' | 'public') => {
    const created = await server.request('POST', '/api/rooms', { token: alice.token, body: { name, visibility } })
    expect(created.status).toBe(201)
    const roomId = created.body.roomId as string
    const added = await server.request('POST', `/api/rooms/${roomId}/members`, {
      token: alice.token,
      body: { userId: bob.userId },
    })
    expect(added.status).toBe(200)
    settled = Math.max(settled, added.body.position)
    return roomId
  }
  privateRoom = await room('Plans', 'private')
  publicRoom = await room('Lobby', 'public')
}, 90_000)
afterAll(async () => {
  await owner?.destroy()
  await server?.close()
})

const save = (who: { token: string }, roomId: string, text: string) =>
  server.request('PUT', `/api/rooms/${roomId}/draft`, { token: who.token, body: { text } })
const draftOf = async (who: { token: string }, roomId: string) => {
  const r = await server.request('GET', `/api/rooms/${roomId}?consistentAfter=${settled}`, { token: who.token })
  return r.status === 200 ? (r.body.draft as string | null) : r.status
}
const rows = async (userId: string) =>
  (await sql<{ text: string }>`select text from tenant.drafts where user_id = ${userId} order by text`.execute(owner)).rows.map(
    (r) => r.text,
  )

describe('drafts are kept in a table, not as events', () => {
  it('saving a draft, keystroke after keystroke, appends no event, and the draft reads back at once', async () => {
    const before = await eventCount(server)
    for (const text of ['h', 'he', 'hel', 'hello']) {
      const saved = await save(bob, privateRoom, text)
      expect(saved.status, JSON.stringify(saved.body)).toBe(200)
      expect(saved.body.roomId).toBe(privateRoom)
      expect(typeof saved.body.position).toBe('number')
    }
    expect(await eventCount(server)).toBe(before)
    expect(await draftOf(bob, privateRoom)).toBe('hello')
    // The author's alone: another member of the room sees their own (none).
    expect(await draftOf(alice, privateRoom)).toBeNull()
  })

  it('saving empty text deletes the row', async () => {
    expect((await save(bob, publicRoom, 'to be dropped')).status).toBe(200)
    expect(await rows(bob.userId)).toContain('to be dropped')
    expect((await save(bob, publicRoom, '')).status).toBe(200)
    expect(await rows(bob.userId)).not.toContain('to be dropped')
    expect(await draftOf(bob, publicRoom)).toBeNull()
  })

  it('a non-member of the room and another tenant can neither write nor read it (404)', async () => {
    expect((await save(carol, privateRoom, 'sneaky')).status).toBe(404)
    expect(await draftOf(carol, privateRoom)).toBe(404)
    expect((await save(mallory, privateRoom, 'sneaky')).status).toBe(404)
    expect(await draftOf(mallory, privateRoom)).toBe(404)
    // A public room reads for every user of the org, but only members keep a draft in it.
    expect((await save(carol, publicRoom, 'sneaky')).status).toBe(404)
    expect(await draftOf(carol, publicRoom)).toBeNull()
    expect((await save(bob, `${privateRoom.slice(0, -4)}ffff`, 'nowhere')).status).toBe(404)
    expect(await rows(carol.userId)).toEqual([])
    expect(await rows(mallory.userId)).toEqual([])
    expect(await draftOf(bob, privateRoom)).toBe('hello')
  })

  it('in SQL, the role that writes drafts reaches only the bound user’s drafts in the bound tenant', async () => {
    const touch = (tenantId: string, userId: string) =>
      owner.transaction().execute(async (trx) => {
        await sql`select set_config('role', ${ROLES.draftWriter}, true), set_config('app.tenant_id', ${tenantId}, true),
                         set_config('app.user_id', ${userId}, true)`.execute(trx)
        const updated = await sql`update tenant.drafts set text = 'overwritten' where user_id = ${bob.userId}`.execute(trx)
        return Number(updated.numAffectedRows)
      })
    expect(await touch(mallory.orgId, bob.userId)).toBe(0)
    expect(await touch(alice.orgId, carol.userId)).toBe(0)
    await expect(
      owner.transaction().execute(async (trx) => {
        await sql`select set_config('role', ${ROLES.draftWriter}, true), set_config('app.tenant_id', ${alice.orgId}, true),
                         set_config('app.user_id', ${bob.userId}, true)`.execute(trx)
        await sql`select count(*) from tenant.messages`.execute(trx)
      }),
    ).rejects.toThrow(/permission denied/)
    expect(await draftOf(bob, privateRoom)).toBe('hello')
  })

  it('a rebuild of the messages read model leaves drafts alone', async () => {
    await rebuild({ store: server.services.store, db: owner }, messagesProjector)
    expect(await draftOf(bob, privateRoom)).toBe('hello')
  })

  it('deleteUserDrafts forgets every draft of one user in a tenant, and nobody else’s', async () => {
    expect((await save(bob, publicRoom, 'second')).status).toBe(200)
    expect((await save(alice, publicRoom, 'alice keeps this')).status).toBe(200)
    expect(await rows(bob.userId)).toEqual(['hello', 'second'])
    expect(await deleteUserDrafts(server.services.db, alice.orgId, bob.userId)).toBe(2)
    expect(await rows(bob.userId)).toEqual([])
    expect(await draftOf(bob, privateRoom)).toBeNull()
    expect(await draftOf(alice, publicRoom)).toBe('alice keeps this')
  })
})
