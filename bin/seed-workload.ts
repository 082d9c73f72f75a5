import { v7 as uuid } from 'uuid'
import { type Actor, streamName } from '../adapters/event-store.ts'
import type { AnyDb } from '../adapters/postgres.ts'
import { orgStream } from '../adapters/streams.ts'
import { signInAccount } from '../commands/accounts.ts'
import { artifactStream, changeArtifact, createArtifact, deleteArtifact } from '../commands/artifacts.ts'
import { writeDraft } from '../commands/drafts.ts'
import { erasureStream } from '../commands/erasure.ts'
import { acceptInvite, createInvite, revokeInvite } from '../commands/invites.ts'
import { messageStream } from '../commands/messages.ts'
import { activateUser, createOrg, joinOrg, reactivateOrg, suspendOrg } from '../commands/orgs.ts'
import { type CommandContext, handleCommand, type PipelineDeps } from '../commands/pipeline.ts'
import { dmRoomId, roomStream } from '../commands/rooms.ts'
import { spaceStream } from '../commands/spaces.ts'
import { cancelTimer, fireTimer, scheduleTimer } from '../commands/timers.ts'
import { type Decider, type DomainEvent, foldRecorded } from '../domain/decider.ts'
import { erasure } from '../domain/erasure.ts'
import { type Mention, type MessageState, message, readMark } from '../domain/messages.ts'
import { org } from '../domain/orgs.ts'
import { type ActorRole, type RoomActor, type RoomState, room } from '../domain/rooms.ts'
import { space } from '../domain/spaces.ts'

/*
 * A realistic workload, written through the command pipeline (deciders, expected revisions, envelopes), so it
 * produces exactly the events the product does: orgs, users, spaces, public and private rooms and DMs, messages
 * with threads, mentions, edits, reactions, deletes and range deletes, read marks and drafts. It grows with
 * every context. Used by `npm run seed`, the CI verify step, benchmarks and tests. Deterministic for a seed
 * (ids aside): the same flags give the same shape of history.
 */

export type SeedOptions = {
  readonly orgs?: number
  readonly usersPerOrg?: number
  readonly roomsPerOrg?: number
  /** Messages in all, spread over every org's rooms. */
  readonly messages?: number
  readonly seed?: number
  /** Rooms seeded at once. */
  readonly concurrency?: number
  /** The clock of the first event; each command moves it on by a few seconds. */
  readonly startAt?: Date
  readonly onProgress?: (p: { commands: number; messages: number; totalMessages: number }) => void
}

export type SeededUser = { userId: string; username: string; role: ActorRole }
export type SeededOrg = { orgId: string; slug: string; users: SeededUser[]; rooms: string[] }
export type SeedSummary = { orgs: SeededOrg[]; commands: number; events: Record<string, number> }

/** mulberry32: a small seeded generator, so a seed gives the same workload. */
export const rng = (seed: number) => {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296
  }
}

const FIRST = ['ada', 'grace', 'alan', 'barbara', 'edsger', 'frances', 'ken', 'margaret', 'linus', 'radia', 'donald', 'sophie']
const WORDS =
  'the build is green again after the flaky test got fixed we should ship the migration tonight who owns the rollout plan ' +
  'I pushed a draft of the design doc please review the section on rebuilds and the shadow tables lunch at noon anyone ' +
  'the customer asked about audit exports and retention the agent opened a pull request with the fix numbers look good'
const VOCAB = WORDS.split(' ')
const EMOJI = ['thumbsup', 'tada', 'eyes', 'heart', 'rocket', '👍', '🎉']

type Live = { id: string; authorId: string; text: string; reactions: Set<string>; threadRootId: string | null }

type RoomRun = {
  readonly roomId: string
  state: RoomState
  readonly members: SeededUser[]
  readonly messages: number
  readonly canArchive: boolean
}

export async function seedWorkload(deps: PipelineDeps & { readonly db: AnyDb }, options: SeedOptions = {}): Promise<SeedSummary> {
  const orgCount = options.orgs ?? 2
  const usersPerOrg = Math.max(3, options.usersPerOrg ?? 8)
  const roomsPerOrg = Math.max(4, options.roomsPerOrg ?? 6)
  const totalMessages = options.messages ?? 2_000
  const random = rng(options.seed ?? 42)
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!
  const chance = (p: number) => random() < p
  let clock = (options.startAt ?? new Date('2025-03-03T09:00:00Z')).getTime()
  const tick = () => {
    clock += 1_000 + Math.floor(random() * 20_000)
    return new Date(clock)
  }
  const events: Record<string, number> = {}
  let commands = 0
  let posted = 0
  let lastReport = 0
  const report = (force = false) => {
    if (!options.onProgress || (!force && Date.now() - lastReport < 250)) return
    lastReport = Date.now()
    options.onProgress({ commands, messages: posted, totalMessages })
  }

  const context = (tenantId: string | null, actor: Actor): CommandContext => {
    const at = tick()
    return {
      tenantId,
      actor,
      correlationId: uuid(),
      causationId: uuid(),
      now: () => at,
      newId: uuid,
    }
  }
  const run = async <C, E extends DomainEvent, S>(
    decider: Decider<C, E, S>,
    stream: string,
    command: C | ((s: S) => C),
    ctx: CommandContext,
  ) => {
    const r = await handleCommand(deps, decider, stream, command, ctx)
    commands++
    for (const e of r.events) events[e.type] = (events[e.type] ?? 0) + 1
    report()
    return r
  }
  const system: Actor = { type: 'operator', id: 'seed' }
  const count = (es: readonly DomainEvent[]) => {
    commands++
    for (const e of es) events[e.type] = (events[e.type] ?? 0) + 1
  }

  const orgs: SeededOrg[] = []
  const runs: RoomRun[] = []
  for (let o = 0; o < orgCount; o++) {
    const orgId = uuid()
    const created = await createOrg(deps, context(null, system), { orgId, name: `Seed Org ${o + 1} ${orgId.slice(-6)}` })
    commands += 2
    events['org.name_reserved'] = (events['org.name_reserved'] ?? 0) + 1
    events['org.created'] = (events['org.created'] ?? 0) + 1
    const users: SeededUser[] = Array.from({ length: usersPerOrg }, (_, i) => ({
      userId: uuid(),
      username: `${FIRST[i % FIRST.length]}${i >= FIRST.length ? i : ''}`,
      role: i === 0 ? 'owner' : i === 1 ? 'admin' : i === usersPerOrg - 1 ? 'guest' : 'member',
    }))
    // People join the org (most by invitation: an account signs in, accepts, and joins), then pick their username.
    for (const [i, u] of users.entries()) {
      const email = `${u.username}@${created.slug}.example`
      if (i > 0 && i % 3 === 0 && u.role !== 'owner') {
        const ctx = context(orgId, { type: 'user', id: users[0]!.userId })
        const { accountId } = await signInAccount(deps, context(null, system), {
          issuer: 'https://idp.seed.example',
          subject: `${orgId}:${u.username}`,
          email,
          emailVerified: true,
        })
        const inv = await createInvite(deps, ctx, {
          orgId,
          email,
          role: u.role as 'admin' | 'member' | 'guest',
          invitedBy: users[0]!.userId,
        })
        const joined = await acceptInvite(deps, context(null, { type: 'user', id: accountId }), {
          token: inv.token,
          accountId,
        })
        u.userId = joined.userId
        commands += 5
        for (const t of ['account.identity_claimed', 'account.registered', 'invite.created', 'invite.accepted', 'user.joined']) {
          events[t] = (events[t] ?? 0) + 1
        }
      } else {
        const r = await joinOrg(deps, context(orgId, system), orgId, {
          userId: u.userId,
          accountId: uuid(),
          type: 'human',
          role: u.role,
          email,
          displayName: u.username[0]!.toUpperCase() + u.username.slice(1),
          at: tick().toISOString(),
        })
        count(r.events)
      }
      const activated = await activateUser(deps, context(orgId, { type: 'user', id: u.userId }), orgId, u.userId, u.username)
      commands += 2
      events['user.username_reserved'] = (events['user.username_reserved'] ?? 0) + 1
      count(activated.events)
    }
    // An invitation nobody took, revoked; a member promoted to admin.
    {
      const ctx = context(orgId, { type: 'user', id: users[0]!.userId })
      const inv = await createInvite(deps, ctx, {
        orgId,
        email: `nobody@${created.slug}.example`,
        role: 'member',
        invitedBy: users[0]!.userId,
      })
      count((await revokeInvite(deps, ctx, { inviteId: inv.inviteId, orgId, by: users[0]!.userId })).events)
      events['invite.created'] = (events['invite.created'] ?? 0) + 1
      const promoted = users[2]!
      const c = context(orgId, { type: 'user', id: users[0]!.userId })
      const r = await run(
        org,
        orgStream(orgId),
        {
          type: 'change_role',
          userId: promoted.userId,
          role: 'admin',
          actor: { userId: users[0]!.userId, role: 'owner' },
          at: c.now().toISOString(),
        },
        c,
      )
      if (r.events.length) promoted.role = 'admin'
    }
    const owner = users[0]!
    const asUser = (u: SeededUser): Actor => ({ type: 'user', id: u.userId })
    const roomActor = (u: SeededUser): RoomActor => ({ userId: u.userId, role: u.role })

    const spaces: string[] = []
    for (const [k, kind] of (['public', 'personal'] as const).entries()) {
      const spaceId = uuid()
      const ctx = context(orgId, asUser(owner))
      await run(
        space,
        spaceStream(spaceId),
        {
          type: 'create',
          spaceId,
          name: k ? 'Notes' : 'Engineering',
          kind,
          actorId: owner.userId,
          actorIsGuest: false,
          at: ctx.now().toISOString(),
        },
        ctx,
      )
      spaces.push(spaceId)
    }
    const renameCtx = context(orgId, asUser(owner))
    await run(
      space,
      spaceStream(spaces[0]!),
      {
        type: 'update',
        spaceId: spaces[0]!,
        name: 'Engineering & Product',
        actorId: owner.userId,
        actorIsAdmin: true,
        at: renameCtx.now().toISOString(),
      },
      renameCtx,
    )

    const humans = users.filter((u) => u.role !== 'guest')
    const guest = users[users.length - 1]!
    const rooms: string[] = []
    for (let r = 0; r < roomsPerOrg; r++) {
      // Mostly public rooms, some private ones, and DMs between pairs.
      const kind = r % 3 === 2 ? 'dm' : r % 3 === 1 ? 'private' : 'public'
      let roomId: string
      let members: SeededUser[]
      if (kind === 'dm') {
        const a = humans[r % humans.length]!
        const b = humans[(r + 1) % humans.length]!
        roomId = dmRoomId(orgId, a.userId, b.userId)
        members = [a, b]
        const ctx = context(orgId, asUser(a))
        await run(
          room,
          roomStream(roomId),
          {
            type: 'open_dm',
            roomId,
            actor: roomActor(a),
            other: { memberId: b.userId, memberType: 'user' },
            at: ctx.now().toISOString(),
          },
          ctx,
        )
        if (rooms.includes(roomId)) continue
      } else {
        roomId = uuid()
        const creator = humans[r % humans.length]!
        const invited = humans.filter((u) => u !== creator && chance(0.6))
        members = [creator, ...invited]
        const ctx = context(orgId, asUser(creator))
        await run(
          room,
          roomStream(roomId),
          {
            type: 'create',
            roomId,
            name: `${kind === 'private' ? 'secret' : 'team'}-${r + 1}`,
            description: chance(0.5) ? 'Where the work happens' : '',
            spaceId: chance(0.7) ? spaces[0]! : null,
            visibility: kind,
            actor: roomActor(creator),
            members: invited.map((u) => ({ memberId: u.userId, memberType: 'user' as const })),
            at: ctx.now().toISOString(),
          },
          ctx,
        )
        // Others join (public rooms), are added (private ones), or leave again; the guest is invited to one room.
        for (const u of humans.filter((x) => !members.includes(x))) {
          if (!chance(0.5)) continue
          const by = kind === 'public' ? u : creator
          const c = context(orgId, asUser(by))
          await run(
            room,
            roomStream(roomId),
            {
              type: 'add_member',
              roomId,
              memberId: u.userId,
              memberType: 'user',
              actor: roomActor(by),
              at: c.now().toISOString(),
            },
            c,
          )
          members.push(u)
        }
        if (r === 0) {
          const c = context(orgId, asUser(creator))
          await run(
            room,
            roomStream(roomId),
            {
              type: 'add_member',
              roomId,
              memberId: guest.userId,
              memberType: 'user',
              actor: roomActor(creator),
              at: c.now().toISOString(),
            },
            c,
          )
          members.push(guest)
        }
        if (members.length > 2) {
          const leaver = members[members.length - 1]!
          const c = context(orgId, asUser(leaver))
          await run(
            room,
            roomStream(roomId),
            { type: 'remove_member', roomId, memberId: leaver.userId, actor: roomActor(leaver), at: c.now().toISOString() },
            c,
          )
          members = members.slice(0, -1)
        }
        const c = context(orgId, asUser(creator))
        await run(
          room,
          roomStream(roomId),
          {
            type: 'update',
            roomId,
            description: `Room ${r + 1}: status, plans and chatter`,
            actor: roomActor(creator),
            at: c.now().toISOString(),
          },
          c,
        )
      }
      rooms.push(roomId)
      const state = foldRecorded(room, await deps.store.readStream(roomStream(roomId)))
      runs.push({ roomId, state, members, messages: 0, canArchive: kind === 'public' && r === 3 })
    }
    orgs.push({ orgId, slug: created.slug, users, rooms })
  }

  // Messages: spread over every room, busier rooms first.
  const weights = runs.map(() => 0.3 + random())
  const sum = weights.reduce((a, b) => a + b, 0)
  const counts = weights.map((w) => Math.floor((w / sum) * totalMessages))
  counts[0]! += totalMessages - counts.reduce((a, b) => a + b, 0)
  const sized = runs.map((r, i) => ({ ...r, messages: counts[i]! }))

  const orgOf = new Map(orgs.flatMap((o) => o.rooms.map((r) => [r, o] as const)))
  const seedRoom = async (run_: RoomRun) => {
    const org = orgOf.get(run_.roomId)!
    const tenantId = org.orgId
    const live: Live[] = []
    /** Each writer's draft in this room, as the drafts table holds it. */
    const drafts = new Map<string, string>()
    const writers = run_.members
    const byName = new Map(org.users.map((u) => [u.username, u.userId]))
    const actorOf = (u: SeededUser): RoomActor & { type: 'user' } => ({ userId: u.userId, role: u.role, type: 'user' })
    const sentence = () => {
      const n = 3 + Math.floor(random() * 14)
      let words = Array.from({ length: n }, () => pick(VOCAB))
      if (chance(0.15)) words = [`@${pick(writers).username}`, ...words]
      return words.join(' ')
    }
    const mentionsOf = (text: string): Mention[] =>
      [...text.matchAll(/@([a-z0-9]+)/g)].flatMap((m) =>
        byName.has(m[1]!) ? [{ userId: byName.get(m[1]!)!, username: m[1]! }] : [],
      )
    const state = (m: Live): MessageState => ({
      exists: true,
      roomId: run_.roomId,
      authorId: m.authorId,
      text: m.text,
      threadRootId: m.threadRootId,
      deleted: false,
      reactions: m.reactions,
    })
    for (let i = 0; i < run_.messages; i++) {
      const author = pick(writers)
      const ctx = context(tenantId, { type: 'user', id: author.userId })
      const roots = live.filter((m) => m.threadRootId === null)
      const root = roots.length && chance(0.2) ? pick(roots.slice(-20)) : null
      const messageId = uuid()
      const text = sentence()
      const mentions = mentionsOf(text)
      await run(
        message,
        messageStream(messageId),
        {
          type: 'post',
          messageId,
          roomId: run_.roomId,
          text,
          threadRoot: root ? { messageId: root.id, state: state(root) } : null,
          mentions,
          room: run_.state,
          actor: actorOf(author),
          at: ctx.now().toISOString(),
        },
        ctx,
      )
      live.push({ id: messageId, authorId: author.userId, text, reactions: new Set(), threadRootId: root?.id ?? null })
      posted++
      const recent = live.slice(-30)
      if (chance(0.06)) {
        const m = pick(recent)
        const who = writers.find((u) => u.userId === m.authorId)
        if (who) {
          const edited = `${m.text} (edited)`
          const c = context(tenantId, { type: 'user', id: who.userId })
          await run(
            message,
            messageStream(m.id),
            {
              type: 'edit',
              messageId: m.id,
              text: edited,
              mentions: mentionsOf(edited),
              room: run_.state,
              actor: actorOf(who),
              at: c.now().toISOString(),
            },
            c,
          )
          m.text = edited
        }
      }
      if (chance(0.15)) {
        const m = pick(recent)
        const who = pick(writers)
        const emoji = pick(EMOJI)
        const key = `${emoji} ${who.userId}`
        const c = context(tenantId, { type: 'user', id: who.userId })
        const reacted = !m.reactions.has(key)
        await run(
          message,
          messageStream(m.id),
          { type: 'react', messageId: m.id, emoji, reacted, room: run_.state, actor: actorOf(who), at: c.now().toISOString() },
          c,
        )
        if (reacted) m.reactions.add(key)
        else m.reactions.delete(key)
      }
      if (chance(0.025) && live.length > 5) {
        const m = pick(recent)
        const who = writers.find((u) => u.userId === m.authorId) ?? writers.find((u) => u.role === 'owner' || u.role === 'admin')
        if (who) {
          const c = context(tenantId, { type: 'user', id: who.userId })
          await run(
            message,
            messageStream(m.id),
            { type: 'delete', messageId: m.id, room: run_.state, actor: actorOf(who), at: c.now().toISOString() },
            c,
          )
          live.splice(live.indexOf(m), 1)
        }
      }
      if (chance(0.08)) {
        const reader = pick(writers)
        const c = context(tenantId, { type: 'user', id: reader.userId })
        await run(
          readMark,
          streamName('room_read', `${run_.roomId}_${reader.userId}`),
          { roomId: run_.roomId, userId: reader.userId, messageId: live[live.length - 1]!.id, at: c.now().toISOString() },
          c,
        )
      }
      if (chance(0.04)) {
        const writer = pick(writers)
        // Half the time the draft is sent or dropped: saving empty text clears it. Drafts are kept, not events.
        const text = drafts.get(writer.userId) && chance(0.5) ? '' : sentence()
        await writeDraft(deps.db, { tenantId, userId: writer.userId }, run_.roomId, text, tick())
        drafts.set(writer.userId, text)
        commands++
      }
      report()
    }
    // Rewind the end of the conversation once: "delete this and everything after it".
    if (live.length >= 8) {
      const tail = live.slice(-3)
      const admin = org.users.find((u) => u.role === 'owner')!
      const c = context(tenantId, { type: 'user', id: admin.userId })
      const r = await run(
        room,
        roomStream(run_.roomId),
        {
          type: 'delete_range',
          roomId: run_.roomId,
          fromMessageId: tail[0]!.id,
          toMessageId: tail[tail.length - 1]!.id,
          messageIds: tail.map((m) => m.id),
          authors: tail.map((m) => m.authorId),
          actor: { userId: admin.userId, role: admin.role },
          at: c.now().toISOString(),
        },
        c,
      )
      run_.state = r.state
    }
    if (run_.canArchive) {
      const admin = org.users.find((u) => u.role === 'owner')!
      const c = context(tenantId, { type: 'user', id: admin.userId })
      await run(
        room,
        roomStream(run_.roomId),
        { type: 'archive', roomId: run_.roomId, actor: { userId: admin.userId, role: admin.role }, at: c.now().toISOString() },
        c,
      )
    }
  }

  const queue = [...sized]
  const workers = Array.from({ length: Math.max(1, options.concurrency ?? 4) }, async () => {
    for (let next = queue.shift(); next; next = queue.shift()) await seedRoom(next)
  })
  await Promise.all(workers)

  // An org is suspended for a while, then reactivated; in each org someone leaves (deactivated) and is erased.
  if (orgs.length > 1) {
    const o = orgs[orgs.length - 1]!
    count((await suspendOrg(deps, context(null, system), { orgId: o.orgId, reason: 'unpaid invoice' })).events)
    count((await reactivateOrg(deps, context(null, system), { orgId: o.orgId })).events)
  }
  // Durable timers in each org: one left scheduled, one cancelled, one fired when due (what control.timers reads).
  for (const o of orgs) {
    const reminder = (n: number) => ({ type: 'seed.reminder', data: { orgId: o.orgId, n } })
    const due = context(o.orgId, system)
    const later = new Date(due.now().getTime() + 86_400_000)
    const [waiting, cancelled, fired] = [uuid(), uuid(), uuid()]
    count((await scheduleTimer(deps, due, { timerId: waiting, dueAt: later, command: reminder(1) })).events)
    count((await scheduleTimer(deps, due, { timerId: cancelled, dueAt: later, command: reminder(2) })).events)
    count((await cancelTimer(deps, context(o.orgId, system), cancelled)).events)
    count((await scheduleTimer(deps, due, { timerId: fired, dueAt: due.now(), command: reminder(3) })).events)
    count((await fireTimer(deps, context(o.orgId, system), fired)).events)
  }
  // Artifacts in each org, added by a processor: a report revised and renamed by the owner, a link the owner deletes.
  for (const o of orgs) {
    const open = runs.find((r) => o.rooms.includes(r.roomId) && !r.canArchive)
    const owner = o.users.find((u) => u.role === 'owner')
    if (!open || !owner) continue
    const processor = { type: 'system', userId: 'seed' } as const
    const by = { type: 'user', userId: owner.userId, role: owner.role } as const
    const as = () => context(o.orgId, { type: 'user', id: owner.userId })
    const platform = () => context(o.orgId, { type: 'system', id: processor.userId })
    const made = [
      await createArtifact(deps, platform(), {
        kind: 'report',
        title: 'Weekly report',
        roomId: open.roomId,
        content: '# Week 1\n\nAll quiet.',
        actor: processor,
      }),
      await createArtifact(deps, platform(), {
        kind: 'link',
        title: 'Dashboard',
        roomId: open.roomId,
        url: 'https://example.com/d',
        actor: processor,
      }),
    ]
    await changeArtifact(deps, as(), { artifactId: made[0]!.artifactId, content: '# Week 1\n\nOne incident.', actor: by })
    await changeArtifact(deps, as(), { artifactId: made[0]!.artifactId, title: 'Week 1', actor: by })
    await deleteArtifact(deps, as(), { artifactId: made[1]!.artifactId, actor: by })
    for (const { artifactId } of made) {
      const recorded = await deps.store.readStream(artifactStream(artifactId))
      // Each command here recorded one event: count them all as commands.
      commands += recorded.length - 1
      count(recorded)
    }
  }
  for (const o of orgs) {
    const leaver = o.users.find((u) => u.role === 'member')
    if (!leaver) continue
    const c = context(o.orgId, { type: 'user', id: leaver.userId })
    await run(
      org,
      orgStream(o.orgId),
      {
        type: 'deactivate',
        userId: leaver.userId,
        actor: { userId: leaver.userId, role: leaver.role },
        at: c.now().toISOString(),
      },
      c,
    )
    // Who left asks to be forgotten.
    await run(
      erasure,
      erasureStream(leaver.userId),
      { userId: leaver.userId, at: c.now().toISOString() },
      context(o.orgId, system),
    )
  }
  report(true)
  return { orgs, commands, events }
}
