import { type Mailer, messageIdFor } from '../../adapters/mailer.ts'
import { tokenMatchesHash } from '../../adapters/opaque-tokens.ts'
import { orgStream } from '../../adapters/streams.ts'
import { inviteStream, inviteToken, loadInvite } from '../../commands/invites.ts'
import type { PipelineDeps } from '../../commands/pipeline.ts'
import type { InviteEvent } from '../../domain/accounts.ts'
import { foldRecorded } from '../../domain/decider.ts'
import { org } from '../../domain/orgs.ts'
import { ERASED_NAME } from '../../domain/personal-data.ts'
import type { Processor } from '../processor.ts'
import { inviteMail } from './templates.ts'

export type InviteEmailDeps = PipelineDeps & {
  readonly mailer: Mailer
  /** PUBLIC_URL: the accept link's origin, and the Message-IDs' domain. */
  readonly publicUrl: string
  /** AuthKeys.inviteTokenKey: the link's token is derived from the invite id with it, as the API derived it. */
  readonly inviteTokenKey: Uint8Array
  readonly now?: () => Date
}

/** Where an invite is accepted: the path the Orgs API takes it on, under the public origin. */
export const inviteAcceptUrl = (publicUrl: string, token: string): string =>
  `${publicUrl.replace(/\/$/, '')}/orgs/invites/${encodeURIComponent(token)}/accept`

type InviteCreated = Extract<InviteEvent, { type: 'invite.created' }>

/**
 * Mails an invite's link to the invitee. `invite.created` holds only the token's hash: the link is made again from
 * the invite id with the server's key, and sent only when it matches that hash (an invite made without the key,
 * or under another AUTH_SECRET_KEY, gets no mail rather than a link that does not work). The Message-ID follows
 * from the event, so a repeat after a crash is the same mail. An invite that is no longer pending (accepted,
 * revoked, expired) by the time it is handled gets no mail. The token is never logged: log lines name the invite.
 */
export function inviteEmails(deps: InviteEmailDeps): Processor<InviteCreated> {
  const now = deps.now ?? (() => new Date())
  const domain = new URL(deps.publicUrl).hostname
  return {
    name: 'invite-emails',
    version: 1,
    // Deployed onto a live system, it mails nothing about what happened before it ran.
    startAt: 'head',
    eventTypes: ['invite.created'],
    partitionBy: 'tenant',
    async handle(event, ctx) {
      const { inviteId, orgId, email, invitedBy, expiresAt, tokenHash } = event.data
      const log = ctx.logger.child({ processor: 'invite-emails', inviteId, eventId: event.id })
      if (!email) return log.info('invitee erased: no invite email')
      const token = inviteToken(deps.inviteTokenKey, inviteId)
      if (!tokenMatchesHash(token, tokenHash)) {
        return log.warn(
          'the invite token was not derived with this server key (made without it, or under another AUTH_SECRET_KEY): no invite email',
        )
      }
      const state = await loadInvite(deps, inviteId)
      if (state.status !== 'pending' || Date.parse(expiresAt) <= now().getTime()) {
        return log.info({ status: state.status, expiresAt }, 'invite no longer pending: no invite email')
      }
      const orgEvents = await deps.store.readStream(orgStream(orgId))
      const orgState = foldRecorded(org, orgEvents)
      const joined = orgEvents.find((e) => e.type === 'user.joined' && (e.data as { userId?: string }).userId === invitedBy)
        ?.data as { displayName?: string } | undefined
      const inviterName = joined?.displayName && joined.displayName !== ERASED_NAME ? joined.displayName : null
      const mail = inviteMail({
        orgName: orgState.status === 'none' ? 'an organization' : orgState.name,
        inviterName,
        acceptUrl: inviteAcceptUrl(deps.publicUrl, token),
        expiresAt,
      })
      await deps.mailer.send({
        to: [email],
        ...mail,
        messageId: messageIdFor(ctx.idFor('invite-email'), domain),
        headers: { 'X-Entity-Ref-ID': inviteId },
      })
      log.info({ stream: inviteStream(inviteId) }, 'invite email sent')
    },
  }
}
