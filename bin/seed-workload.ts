import { v7 as uuid } from 'uuid'
import { type Actor, type AppendOptions, type NewEvent, streamName } from '../adapters/event-store.ts'
import type { AnyDb } from '../adapters/postgres.ts'
import { operatorsStream, orgStream } from '../adapters/streams.ts'
import { signInAccount } from '../commands/accounts.ts'
import {
  agentStream,
  allowTool,
  configureAgent,
  decideProposal,
  proposeRolePrompt,
  setRolePrompt,
  usernameFromName,
} from '../commands/agents.ts'
import { artifactStream, changeArtifact, createArtifact, deleteArtifact } from '../commands/artifacts.ts'
import { writeDraft } from '../commands/drafts.ts'
import { erasureStream } from '../commands/erasure.ts'
import { acceptInvite, createInvite, revokeInvite } from '../commands/invites.ts'
import { messageStream } from '../commands/messages.ts'
import { bootstrapOperator, grantOperator, revokeOperator } from '../commands/operators.ts'
import {
  activateUser,
  createOrg,
  joinOrg,
  reactivateOrg,
  reserveUsername,
  setLlmPolicy,
  setOrgLimits,
  suspendOrg,
} from '../commands/orgs.ts'
import { type CommandContext, type DecisionReader, handleCommand, loadState, type PipelineDeps } from '../commands/pipeline.ts'
import { dmRoomId, roomStream } from '../commands/rooms.ts'
import { awaitTask, finishThreadRun, runCommand, wakeAgent } from '../commands/runs.ts'
import { spaceStream } from '../commands/spaces.ts'
import { questionStream } from '../commands/task-questions.ts'
import { scheduleStream, scheduleTimerId, startInstance } from '../commands/task-schedules.ts'
import { addDependency, type CreateTaskInput, candidateOf, createTask, deleteTask, taskStream } from '../commands/tasks.ts'
import { cancelTimer, fireTimer, scheduleTimer } from '../commands/timers.ts'
import { changeCap, recordUsage, setPrices } from '../commands/usage.ts'
import { type AgentActor, agent } from '../domain/agents.ts'
import { type Decider, type DomainEvent, foldRecorded } from '../domain/decider.ts'
import { erasure } from '../domain/erasure.ts'
import { type Mention, type MessageState, message, readMark } from '../domain/messages.ts'
import { operators } from '../domain/operators.ts'
import { org } from '../domain/orgs.ts'
import { type ActorRole, type RoomActor, type RoomState, room } from '../domain/rooms.ts'
import type { RunCommand, RunItemKind } from '../domain/runs.ts'
import { space } from '../domain/spaces.ts'
import { type QuestionTask, taskQuestion } from '../domain/task-questions.ts'
import {
  cadenceOf,
  type ScheduleCommand,
  type ScheduleHolder,
  type ScheduleSettings,
  taskSchedule,
} from '../domain/task-schedules.ts'
import {
  canEditTask,
  canReadTask,
  type LiveTask,
  type PersonRef,
  type TaskActor,
  type TaskCommand,
  task,
} from '../domain/tasks.ts'
import { emptyPrices, prices, pricesStream } from '../domain/usage.ts'

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

/** The model the seed's agents use and its usage is priced at. */
const SEED_MODEL = 'seed-model'

type TaskChange = Exclude<TaskCommand, { type: 'patch' | 'create' }>
type TaskCommon = { taskId: string; actor: TaskActor; room: RoomState; at: string }

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
  /*
   * What follows is written through a store that counts what it appends: these commands go through the product's
   * functions, several of which append to more than one stream (a subtask, an agent, a wake-up, a cap).
   */
  const counted: PipelineDeps & { readonly db: AnyDb } = {
    ...deps,
    store: new Proxy(deps.store, {
      get(target, prop) {
        if (prop === 'append') {
          return async (stream: string, es: readonly NewEvent[], opts: AppendOptions) => {
            const r = await target.append(stream, es, opts)
            if (es.length > 0) commands++
            for (const e of es) events[e.type] = (events[e.type] ?? 0) + 1
            report()
            return r
          }
        }
        const v = Reflect.get(target, prop, target)
        return typeof v === 'function' ? v.bind(target) : v
      },
    }),
  }

  // Agents, tasks, schedules, questions, spending and agent runs in each org, after the platform's own settings.
  await seedPlatform()
  for (const o of orgs) await seedWork(o)

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

  /** Prices for the seed's model (kept beside any the platform has), and an operator granted, then revoked. */
  async function seedPlatform() {
    const now = (await loadState(counted.store, prices, pricesStream, null)).prices ?? emptyPrices
    await setPrices(counted, context(null, system), {
      ...now,
      models: {
        ...now.models,
        [SEED_MODEL]: { inputPerMTokMicros: 1_000_000, cachedInputPerMTokMicros: 100_000, outputPerMTokMicros: 4_000_000 },
      },
    })
    const signIn = async (subject: string) =>
      (
        await signInAccount(counted, context(null, system), {
          issuer: 'https://idp.seed.example',
          subject,
          email: `${subject}@ops.seed.example`,
          emailVerified: true,
        })
      ).accountId
    // The platform has one operators stream: the first seed of a database bootstraps one, later seeds act as it.
    const current = await loadState(counted.store, operators, operatorsStream(), null)
    let by = [...current.operators][0]
    if (!by) {
      by = await signIn('seed-operator')
      await bootstrapOperator(counted, context(null, { type: 'user', id: by }), by)
    }
    const deputy = await signIn(`seed-deputy-${uuid()}`)
    await grantOperator(counted, context(null, { type: 'user', id: by }), { accountId: deputy, by })
    await revokeOperator(counted, context(null, { type: 'user', id: by }), { accountId: deputy, by })
  }

  async function seedWork(o: SeededOrg) {
    const { orgId } = o
    const owner = o.users.find((u) => u.role === 'owner')
    const [lead, second] = o.users.filter((u) => u.role === 'admin')
    if (!owner || !lead || !second) return
    const as = (u: SeededUser) => context(orgId, { type: 'user', id: u.userId })
    const actor = (u: SeededUser): TaskActor => ({ userId: u.userId, role: u.role, type: 'user' })
    const manager: AgentActor = { userId: owner.userId, role: 'owner', type: 'human' }

    // An operator caps the org and sets its LLM policy.
    await setOrgLimits(counted, context(null, system), { orgId, seats: 500, storageBytes: 50 * 1024 ** 3 })
    await setLlmPolicy(counted, context(null, system), {
      orgId,
      allowedModels: [SEED_MODEL, `${SEED_MODEL}-mini`],
      keySource: 'platform',
      monthlyTokenBudget: 50_000_000,
    })

    // The room the work happens in, with the two admins.
    const roomId = uuid()
    {
      const ctx = as(owner)
      await handleCommand(
        counted,
        room,
        roomStream(roomId),
        {
          type: 'create',
          roomId,
          name: 'delivery',
          description: 'Tasks and the agent that helps with them',
          spaceId: null,
          visibility: 'public',
          actor: { userId: owner.userId, role: owner.role },
          members: [lead, second].map((u) => ({ memberId: u.userId, memberType: 'user' as const })),
          at: ctx.now().toISOString(),
        },
        ctx,
      )
    }

    // An agent, made as POST /api/agents makes one (its username first, then the agent, then its joining the org).
    const agentId = uuid()
    {
      const ctx = as(owner)
      const at = ctx.now().toISOString()
      const name = 'Seed Helper'
      const username = usernameFromName(name)
      await reserveUsername(counted, ctx, orgId, agentId, username)
      await handleCommand(
        counted,
        agent,
        agentStream(agentId),
        {
          type: 'create',
          data: {
            agentId,
            name,
            username,
            rolePrompt: 'You help the team ship.',
            model: SEED_MODEL,
            tools: [],
            createdBy: owner.userId,
            at,
          },
        },
        ctx,
      )
      await joinOrg(counted, ctx, orgId, {
        userId: agentId,
        accountId: null,
        type: 'agent',
        role: 'member',
        email: null,
        displayName: name,
        username,
        at,
      })
      const added = as(owner)
      await handleCommand(
        counted,
        room,
        roomStream(roomId),
        {
          type: 'add_member',
          roomId,
          memberId: agentId,
          memberType: 'agent',
          actor: { userId: owner.userId, role: owner.role },
          at: added.now().toISOString(),
        },
        added,
      )
    }
    await configureAgent(
      counted,
      { ...as(owner), tenantId: orgId },
      { agentId, settings: { reasoningEffort: 'medium', spendLimitUsd: 25 }, actor: manager },
    )
    await setRolePrompt(counted, as(owner), {
      agentId,
      rolePrompt: { role: 'You help the delivery team ship.', rules: ['Ask before posting'], examples: [], sources: [] },
      actor: manager,
    })
    // The agent proposes twice: the first is rejected, the second accepted.
    for (const decision of ['reject', 'accept'] as const) {
      const proposalId = uuid()
      await proposeRolePrompt(counted, context(orgId, { type: 'agent', id: agentId }), {
        agentId,
        proposalId,
        rolePrompt: {
          role: 'You help the delivery team ship.',
          rules: ['Ask before posting', decision === 'reject' ? 'Post without asking' : 'Summarise long threads'],
          examples: [],
          sources: [],
        },
        comment: 'what I learned this week',
      })
      await decideProposal(
        counted,
        as(owner),
        decision === 'accept'
          ? { agentId, proposalId, actor: manager, decision }
          : { agentId, proposalId, actor: manager, decision, comment: 'keep asking first' },
      )
    }

    // Risky tools always allowed in the room, as approving a call with alwaysAllow records it; one taken back, as
    // DELETE /api/agents/{id}/allowed-tools/... does.
    for (const [tool, allowed] of [
      ['delete_task', true],
      ['post_message', true],
      ['post_message', false],
    ] as const) {
      await allowTool(counted, as(owner), { agentId, roomId, tool, allowed, actor: manager })
    }

    // Tasks, changed as PATCH /api/tasks/{id} and the other task routes change them: decisions on the task, its room read.
    const onTask = (
      ctx: CommandContext,
      taskId: string,
      build: (t: LiveTask, roomState: RoomState, read: DecisionReader) => Promise<TaskChange[]>,
    ) =>
      handleCommand(
        counted,
        task,
        taskStream(taskId),
        async (state, read) => {
          if (!state.exists || state.deleted) throw new Error(`seed: task ${taskId} is gone`)
          return { type: 'patch' as const, taskId, changes: await build(state, await read(room, roomStream(state.roomId)), read) }
        },
        ctx,
      )
    const change = async (
      by: SeededUser,
      taskId: string,
      make: (common: TaskCommon, t: LiveTask, read: DecisionReader) => Promise<TaskChange> | TaskChange,
    ) => {
      const ctx = as(by)
      return onTask(ctx, taskId, async (t, roomState, read) => [
        await make({ taskId, actor: actor(by), room: roomState, at: ctx.now().toISOString() }, t, read),
      ])
    }
    const candidate = async (read: DecisionReader, ref: PersonRef) => candidateOf(await read(org, orgStream(orgId)), ref)
    const create = (by: SeededUser, input: Omit<CreateTaskInput, 'actor'>) =>
      createTask(counted, as(by), { ...input, actor: actor(by) })

    const { taskId: audit } = await create(owner, {
      title: 'Ship the audit export',
      description: 'Customers asked for it',
      roomId,
      assignee: { userId: lead.userId },
      reviewGates: { plan: true, result: true },
    })
    const { taskId: rollout } = await create(owner, { title: 'Write the rollout plan', roomId })
    const { taskId: draft } = await create(owner, { title: 'Draft the migration', parentId: audit })
    await change(owner, audit, (c) => ({
      ...c,
      type: 'update',
      title: 'Ship the audit export (v2)',
      description: 'CSV and JSON',
    }))
    await change(owner, rollout, async (c, _t, read) => {
      const ref: PersonRef = { id: second.userId, type: 'user' }
      return { ...c, type: 'assign', assignee: { ref, candidate: await candidate(read, ref) } }
    })
    await change(owner, rollout, (c) => ({ ...c, type: 'set_review_gates', result: true }))
    await change(owner, audit, async (c, _t, read) => ({
      ...c,
      type: 'watch',
      userId: second.userId,
      candidate: await candidate(read, { id: second.userId, type: 'user' }),
    }))
    await change(owner, audit, async (c, _t, read) => ({
      ...c,
      type: 'add_assistant',
      agentId,
      candidate: await candidate(read, { id: agentId, type: 'agent' }),
    }))
    // The plan is submitted by the assignee and approved by the reporter; then work starts.
    await change(lead, audit, (c) => ({
      ...c,
      type: 'submit_review',
      gate: 'plan',
      text: 'Export from the read model, stream it',
    }))
    await change(owner, audit, (c) => ({
      ...c,
      type: 'decide_review',
      gate: 'plan',
      decision: 'approve',
      comment: 'Go',
      children: [],
    }))
    await change(lead, audit, (c) => ({ ...c, type: 'change_status', to: 'in_progress', children: [], parent: null }))
    // A dependency added (walked for a cycle as the route walks it) and removed again.
    await addDependency(counted, as(owner), audit, rollout, actor(owner))
    await change(owner, audit, (c) => ({ ...c, type: 'remove_dependency', dependsOnId: rollout }))
    await change(owner, audit, (c) => ({ ...c, type: 'remove_assistant', agentId }))
    await change(second, audit, (c) => ({ ...c, type: 'unwatch', userId: second.userId }))
    // The subtask is dropped, the result approved (which closes the task), and the dropped subtask deleted.
    await change(owner, draft, (c) => ({ ...c, type: 'change_status', to: 'cancelled', children: [], parent: null }))
    await change(lead, audit, (c) => ({ ...c, type: 'submit_review', gate: 'result', text: 'Shipped behind a flag' }))
    await change(owner, audit, async (c, t, read) => ({
      ...c,
      type: 'decide_review',
      gate: 'result',
      decision: 'approve',
      comment: null,
      children: await Promise.all(t.subtasks.map((id) => read(task, taskStream(id)))),
    }))
    await deleteTask(counted, as(owner), draft, actor(owner))
    // What stays on the rollout task (so the verify step compares rows of these tables too): the reporter watching
    // it, the agent assisting, and a dependency on the audit task.
    await change(owner, rollout, (c) => ({ ...c, type: 'watch', userId: owner.userId, candidate: null }))
    await change(owner, rollout, async (c, _t, read) => ({
      ...c,
      type: 'add_assistant',
      agentId,
      candidate: await candidate(read, { id: agentId, type: 'agent' }),
    }))
    await addDependency(counted, as(owner), rollout, audit, actor(owner))

    // A question about a task, put to its assignee and answered.
    {
      const questionId = uuid()
      const view = async (read: DecisionReader, who: SeededUser): Promise<QuestionTask> => {
        const t = await read(task, taskStream(rollout))
        const roomState: RoomState = t.exists ? await read(room, roomStream(t.roomId)) : { exists: false }
        const visible = canReadTask(t, roomState, who.userId, who.role)
        return {
          visible,
          editable: visible && t.exists && canEditTask(t, roomState, actor(who)),
          roomId: t.exists ? t.roomId : '',
        }
      }
      const asked = as(owner)
      await handleCommand(
        counted,
        taskQuestion,
        questionStream(questionId),
        async (_, read) => {
          const orgState = await read(org, orgStream(orgId))
          const member = orgState.status === 'none' ? undefined : orgState.members.get(second.userId)
          const t = await read(task, taskStream(rollout))
          const roomState: RoomState = t.exists ? await read(room, roomStream(t.roomId)) : { exists: false }
          return {
            type: 'ask' as const,
            questionId,
            taskId: rollout,
            task: await view(read, owner),
            askedBy: owner.userId,
            to: member?.active
              ? {
                  userId: second.userId,
                  person: member.type !== 'agent',
                  canReadTask: canReadTask(t, roomState, second.userId, member.role),
                }
              : null,
            text: 'Which regions go first?',
            at: asked.now().toISOString(),
          }
        },
        asked,
        { create: true },
      )
      const answered = as(second)
      await handleCommand(
        counted,
        taskQuestion,
        questionStream(questionId),
        async (_, read) => ({
          type: 'answer' as const,
          questionId,
          task: await view(read, second),
          actorId: second.userId,
          text: 'EU, then the US',
          at: answered.now().toISOString(),
        }),
        answered,
      )
    }

    // Spending on a capped task: past 80 % (a warning), then past the cap (reached).
    await changeCap(counted, as(owner), {
      type: 'set',
      orgId,
      scope: 'task',
      scopeId: rollout,
      limitMicroUsd: 1_000_000,
      byOperator: false,
    })
    for (const inputTokens of [850_000, 300_000]) {
      await recordUsage(counted, context(orgId, { type: 'agent', id: agentId }), {
        orgId,
        recordId: uuid(),
        reservationId: null,
        agentId,
        roomId,
        taskId: rollout,
        usage: { kind: 'llm', model: SEED_MODEL, inputTokens, cachedInputTokens: 0, outputTokens: 0 },
      })
    }

    // A recurring task: its schedule set, resumed (its next run scheduled), run at once, and paused.
    {
      const { taskId: weekly } = await create(owner, { title: 'Weekly report', roomId, assignee: { userId: lead.userId } })
      const holder = async (read: DecisionReader): Promise<ScheduleHolder> => {
        const t = await read(task, taskStream(weekly))
        if (!t.exists) return { visible: false, editable: false, parentId: null, actorIsGuest: false }
        const roomState = await read(room, roomStream(t.roomId))
        const visible = canReadTask(t, roomState, owner.userId, owner.role)
        return {
          visible,
          editable: visible && canEditTask(t, roomState, actor(owner)),
          parentId: t.parentId,
          actorIsGuest: false,
        }
      }
      const timerIdFor = (n: number, dueAt: string) => scheduleTimerId(weekly, n, dueAt)
      const onSchedule = (build: (read: DecisionReader, at: string) => Promise<ScheduleCommand>) => {
        const ctx = as(owner)
        return handleCommand(
          counted,
          taskSchedule,
          scheduleStream(weekly),
          (_, read) => build(read, ctx.now().toISOString()),
          ctx,
        )
      }
      const settings: ScheduleSettings = {
        cadence: cadenceOf({ every: { hours: 24 } }),
        perRunUsdLimit: 2,
        instructions: 'Summarise what shipped',
      }
      await onSchedule(async (read, at) => ({
        type: 'set',
        taskId: weekly,
        settings,
        holder: await holder(read),
        timerIdFor,
        by: owner.userId,
        at,
      }))
      await onSchedule(async (read, at) => ({
        type: 'resume',
        taskId: weekly,
        holder: await holder(read),
        timerIdFor,
        by: owner.userId,
        at,
      }))
      const runTaskId = uuid()
      const ran = as(owner)
      const at = ran.now().toISOString()
      await handleCommand(
        counted,
        taskSchedule,
        scheduleStream(weekly),
        async (_, read) => ({
          type: 'run_now' as const,
          taskId: weekly,
          runTaskId,
          holder: await holder(read),
          by: owner.userId,
          at,
        }),
        ran,
      )
      await startInstance(counted, ran, { taskId: weekly, runTaskId, at, by: owner.userId, ...settings })
      await onSchedule(async (read, at) => ({ type: 'pause', taskId: weekly, holder: await holder(read), by: owner.userId, at }))
    }

    // The agent's thread in the room and its runs, as a worker records them: completed (after an approved tool call,
    // with two requests queued meanwhile), failed, stopped incomplete, and cancelled.
    const workerId = 'seed-worker'
    const wake = (text: string) =>
      wakeAgent(counted, as(owner), {
        agentId,
        roomId,
        taskId: null,
        workType: 'conversation',
        input: { trigger: { type: 'request', userId: owner.userId, requestId: uuid() }, text },
      })
    const asWorker = () => context(orgId, { type: 'agent', id: agentId })
    const claim = async (runId: string) => {
      const ctx = asWorker()
      const r = await runCommand(
        counted,
        ctx,
        { type: 'claim', runId, workerId, leaseMs: 300_000, at: ctx.now().toISOString() },
        runId,
      )
      if (!r.state.exists) throw new Error(`seed: run ${runId} is gone`)
      const generation = r.state.generation
      return (command: (held: { runId: string; workerId: string; generation: number; at: string }) => RunCommand) => {
        const c = asWorker()
        return runCommand(counted, c, command({ runId, workerId, generation, at: c.now().toISOString() }), runId)
      }
    }
    const item = (kind: RunItemKind, content: string, call?: { toolCallId: string; tool: string; arguments: string }) => ({
      itemId: uuid(),
      kind,
      content,
      toolCallId: call?.toolCallId ?? null,
      tool: call?.tool ?? null,
      arguments: call?.arguments ?? null,
    })
    const finish = (threadId: string, runId: string) => finishThreadRun(counted, asWorker(), { threadId, runId })

    const first = await wake('Summarise today’s thread for me')
    if (!first.runId) throw new Error('seed: the first wake-up started no run')
    let held = await claim(first.runId)
    await held((h) => ({ ...h, type: 'renew', leaseMs: 300_000 }))
    await held((h) => ({ ...h, type: 'add_item', item: item('reasoning', 'Reading the thread'), groupId: uuid() }))
    const called = { toolCallId: 'call_1', tool: 'post_message', arguments: '{"text":"Summary"}' }
    const call = item('tool_call', '', called)
    await held((h) => ({ ...h, type: 'add_item', item: call, groupId: uuid() }))
    await held((h) => ({ ...h, type: 'require_action', itemId: call.itemId }))
    await wake('Also list the open questions')
    await wake('And who owns each')
    {
      const ctx = as(owner)
      await runCommand(
        counted,
        ctx,
        {
          type: 'decide_action',
          runId: first.runId,
          toolCallId: 'call_1',
          decision: 'approve',
          by: owner.userId,
          at: ctx.now().toISOString(),
        },
        first.runId,
      )
    }
    held = await claim(first.runId)
    await held((h) => ({ ...h, type: 'add_item', item: item('tool_output', '{"ok":true}', called), groupId: uuid() }))
    const answer = { ...item('message', 'Working on it'), status: 'in_progress' as const }
    await held((h) => ({ ...h, type: 'add_item', item: answer, groupId: uuid() }))
    await held((h) => ({ ...h, type: 'update_item', itemId: answer.itemId, content: 'Posted the summary', status: 'completed' }))
    await held((h) => ({ ...h, type: 'complete' }))
    // The queued requests start the next run, which fails.
    const next = (await finish(first.threadId, first.runId)).events.find((e) => e.type === 'thread.run_queued')
    if (next?.type !== 'thread.run_queued') throw new Error('seed: the queued inputs started no run')
    held = await claim(next.data.runId)
    await held((h) => ({ ...h, type: 'add_item', item: item('message', 'Looking'), groupId: uuid() }))
    await held((h) => ({ ...h, type: 'fail', code: 'model_error', message: 'the model answered 500' }))
    await finish(first.threadId, next.data.runId)
    const third = await wake('Try again, briefly')
    if (!third.runId) throw new Error('seed: the third wake-up started no run')
    held = await claim(third.runId)
    await held((h) => ({ ...h, type: 'add_item', item: item('reasoning', 'Too many steps'), groupId: uuid() }))
    await held((h) => ({ ...h, type: 'stop_incomplete', reason: 'max_steps', detail: 'stopped after 40 steps' }))
    await finish(third.threadId, third.runId)
    const fourth = await wake('Never mind')
    if (!fourth.runId) throw new Error('seed: the fourth wake-up started no run')
    {
      const ctx = as(owner)
      await runCommand(
        counted,
        ctx,
        { type: 'cancel', runId: fourth.runId, by: owner.userId, at: ctx.now().toISOString() },
        fourth.runId,
      )
    }
    await finish(fourth.threadId, fourth.runId)
    // The agent waits for the rollout task (its thread is woken when the task closes).
    await awaitTask(counted, asWorker(), {
      runId: fourth.runId,
      agentId,
      awaitedTaskId: rollout,
      note: 'then post the plan in the room',
    })
  }
}
