import { sql } from 'kysely'
import { streamName } from '../../adapters/event-store.ts'
import { type Mailer, messageIdFor } from '../../adapters/mailer.ts'
import type { AnyDb } from '../../adapters/postgres.ts'
import { orgStream } from '../../adapters/streams.ts'
import { inTenant } from '../../adapters/tenant-transaction.ts'
import { handleCommand, loadState, type PipelineDeps, readTenantStream } from '../../commands/pipeline.ts'
import { roomStream } from '../../commands/rooms.ts'
import { loadNotificationSettings } from '../../commands/users.ts'
import type { Decider, DomainEvent } from '../../domain/decider.ts'
import { foldRecorded } from '../../domain/decider.ts'
import type { MessageEvent } from '../../domain/messages.ts'
import { org } from '../../domain/orgs.ts'
import { canRead, room } from '../../domain/rooms.ts'
import type { Processor, ProcessorContext, TimerCommand } from '../processor.ts'
import { type MissedMessage, missedMentionsMail } from './templates.ts'

/*
 * Missed-mention emails. On message.created, each person it is for (mentioned, or the other member of a DM) gets a
 * durable timer for two minutes later. When it fires, they get one email batching what they missed in that room,
 * unless by then they have read up to it, hold a live realtime queue (a client of theirs is open), turned these
 * emails off, or were emailed about that room within the hour: then the check is put off to the hour's end, and
 * whatever is still unread goes in one mail then.
 *
 * The processor's memory of what it mailed is a stream per user (`mention_mail-<userId>`): missed_mentions.emailed
 * names the room and the last message mailed, so the next mail starts after it.
 */

export const MISSED_MENTIONS_CHECK = 'missed-mentions-email.check'

/** Whether a person holds a live realtime queue (a client of theirs is open and polling). */
export type Presence = { hasLiveQueue(tenantId: string, userId: string): Promise<boolean> }

export type MissedMentionsDeps = PipelineDeps & {
  /** The tenant database: read marks and messages (tenant.room_reads, tenant.messages). */
  readonly db: AnyDb
  readonly mailer: Mailer
  readonly presence: Presence
  readonly publicUrl: string
  readonly now?: () => Date
  /** How long after a message an unread one is mailed (2 minutes). */
  readonly delayMs?: number
  /** At most one mail per room per this long (an hour). */
  readonly windowMs?: number
  /** At most this many messages in one mail (the newest are kept). */
  readonly maxMessages?: number
}

type MessageCreated = Extract<MessageEvent, { type: 'message.created' }>
type CheckData = { tenantId: string; userId: string; roomId: string; messageId: string }

// --- what was mailed, per user

export type MentionMailEvent = DomainEvent<
  'missed_mentions.emailed',
  { userId: string; roomId: string; lastMessageId: string; lastSeq: number; count: number; at: string }
>
type MentionMailState = ReadonlyMap<string, { lastSeq: number; at: string }>
const mentionMail: Decider<{ type: 'record'; data: MentionMailEvent['data'] }, MentionMailEvent, MentionMailState> = {
  initialState: new Map(),
  decide: (c) => [{ type: 'missed_mentions.emailed', data: c.data }],
  evolve: (s, e) => new Map(s).set(e.data.roomId, { lastSeq: e.data.lastSeq, at: e.data.at }),
}
export const mentionMailStream = (userId: string) => streamName('mention_mail', userId)

const isCheck = (data: Readonly<Record<string, unknown>>): data is CheckData =>
  ['tenantId', 'userId', 'roomId', 'messageId'].every((k) => typeof data[k] === 'string')

/** The processor (on message.created) and the handler of its timers (registered for MISSED_MENTIONS_CHECK). */
export function missedMentionEmails(deps: MissedMentionsDeps) {
  const now = deps.now ?? (() => new Date())
  const delayMs = deps.delayMs ?? 120_000
  const windowMs = deps.windowMs ?? 3_600_000
  const maxMessages = deps.maxMessages ?? 20
  const origin = deps.publicUrl.replace(/\/$/, '')
  const domain = new URL(deps.publicUrl).hostname

  const processor: Processor<MessageCreated> = {
    name: 'missed-mention-emails',
    version: 1,
    // Deployed onto a live system, it mails nothing about what happened before it ran.
    startAt: 'head',
    eventTypes: ['message.created'],
    partitionBy: 'tenant',
    async handle(event, ctx) {
      const tenantId = event.metadata.tenantId
      const { roomId, messageId, authorId, mentions, at } = event.data
      if (!tenantId) return
      const r = await loadState(deps.store, room, roomStream(roomId), tenantId)
      if (!r.exists) return
      // Who it is for: the other member of a DM, and whoever is mentioned and may read the room.
      const dmPeers = r.kind === 'dm' ? [...r.members.keys()] : []
      const mentioned = mentions.map((m) => m.userId).filter((u) => r.members.has(u) || r.visibility === 'public')
      const recipients = [...new Set([...dmPeers, ...mentioned])].filter((u) => u !== authorId)
      const due = new Date(Date.parse(at) + delayMs)
      for (const userId of recipients) {
        const command: TimerCommand = { type: MISSED_MENTIONS_CHECK, data: { tenantId, userId, roomId, messageId } }
        await ctx.schedule(due, command, `check:${userId}`)
      }
    },
  }

  /** Runs when a check is due: mails what the person missed in the room, or puts it off, or does nothing. */
  async function check(command: TimerCommand, ctx: ProcessorContext): Promise<void> {
    if (!isCheck(command.data)) throw new Error(`${MISSED_MENTIONS_CHECK}: malformed command`)
    const { tenantId, userId, roomId } = command.data
    const log = ctx.logger.child({ processor: 'missed-mention-emails', tenantId, userId, roomId })
    if (!(await loadNotificationSettings(deps, tenantId, userId)).email) return log.debug('emails off')
    if (await deps.presence.hasLiveQueue(tenantId, userId)) return log.debug('a client is open: no email')

    const mailed = await loadState(deps.store, mentionMail, mentionMailStream(userId), tenantId)
    const last = mailed.get(roomId)
    const nextAllowed = last ? Date.parse(last.at) + windowMs : 0
    const r = await loadState(deps.store, room, roomStream(roomId), tenantId)
    const orgEvents = await readTenantStream(deps.store, orgStream(tenantId), tenantId)
    const o = foldRecorded(org, orgEvents)
    if (o.status !== 'active') return log.debug('org not active')
    const member = o.members.get(userId)
    // Only what they may read now: a member of the org still, and of the room (or it is public and they no guest).
    if (!r.exists || r.archived || !member?.active || !canRead(r, userId, member.role)) return log.debug('may not read the room')

    const missed = await inTenant(deps.db, { tenantId, userId }, async (trx) => {
      const read = await sql<{ seq: string }>`select seq from tenant.room_reads
        where tenant_id = ${tenantId} and room_id = ${roomId} and user_id = ${userId}`.execute(trx)
      const after = Math.max(Number(read.rows[0]?.seq ?? 0), last?.lastSeq ?? 0)
      // In a DM everything the other wrote; elsewhere what mentions them.
      const mine = r.kind === 'dm' ? sql`true` : sql`m.mentions @> ${JSON.stringify([{ userId }])}::jsonb`
      const { rows } = await sql<{ id: string; seq: string; author_id: string; text: string; created_at: Date }>`
        select m.id, m.seq, m.author_id, m.text, m.created_at from tenant.messages m
         where m.tenant_id = ${tenantId} and m.room_id = ${roomId} and m.seq > ${after} and m.deleted_at is null
           and m.author_id <> ${userId} and ${mine}
         order by m.seq desc limit ${maxMessages}`.execute(trx)
      return rows.reverse()
    })
    if (missed.length === 0) return log.debug('nothing unread to mail')
    if (now().getTime() < nextAllowed) {
      // Mailed about this room within the hour: one more look when the hour is up batches whatever is unread then.
      await ctx.schedule(new Date(nextAllowed), command, 'after-window')
      return log.debug({ at: new Date(nextAllowed).toISOString() }, 'mailed within the hour: put off')
    }

    const names = new Map<string, string>()
    for (const e of orgEvents) {
      if (e.type === 'user.joined') {
        const d = e.data as { userId: string; displayName: string }
        names.set(d.userId, d.displayName)
      }
    }
    const nameOf = (id: string) => {
      const username = o.members.get(id)?.username
      return username ? `@${username}` : (names.get(id) ?? 'someone')
    }
    const messages: MissedMessage[] = missed.map((m) => ({
      authorName: nameOf(m.author_id),
      text: m.text,
      at: new Date(m.created_at).toISOString(),
    }))
    const mail = missedMentionsMail({
      roomName: r.kind === 'dm' ? null : r.name,
      orgName: o.name,
      roomUrl: `${origin}/rooms/${roomId}?org=${encodeURIComponent(o.slug)}`,
      settingsUrl: `${origin}/api/me/notifications`,
      messages,
    })
    const email = orgEvents
      .filter((e) => e.type === 'user.joined' && (e.data as { userId: string }).userId === userId)
      .map((e) => (e.data as { email: string | null }).email)[0]
    if (!email) return log.debug('no email address')
    await deps.mailer.send({
      to: [email],
      ...mail,
      messageId: messageIdFor(ctx.idFor('missed-mentions-email'), domain),
      headers: { 'List-Unsubscribe': `<${origin}/api/me/notifications>`, 'X-Entity-Ref-ID': `${userId}:${roomId}` },
    })
    const lastMessage = missed[missed.length - 1]!
    const at = now().toISOString()
    await handleCommand(
      deps,
      mentionMail,
      mentionMailStream(userId),
      {
        type: 'record',
        data: { userId, roomId, lastMessageId: lastMessage.id, lastSeq: Number(lastMessage.seq), count: missed.length, at },
      },
      {
        tenantId,
        actor: { type: 'system', id: 'missed-mention-emails' },
        correlationId: ctx.idFor('correlation'),
        causationId: null,
        now,
        newId: () => ctx.idFor('emailed'),
      },
    )
    log.info({ count: missed.length }, 'missed-mentions email sent')
  }

  return { processor, check }
}
