/*
 * The product's mails, each as text and HTML. Everything that comes from people (names, org and room names,
 * message excerpts) is escaped in the HTML, and kept to one line in subjects: a name is never markup, and never a
 * header of its own.
 */

export type RenderedMail = { readonly subject: string; readonly text: string; readonly html: string }

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }

/** Text as HTML text or attribute value. */
export const escapeHtml = (s: string): string => s.replace(/[&<>"']/g, (c) => ESCAPES[c]!)

/** One line, for a subject: no line breaks or other control characters, bounded. */
const oneLine = (s: string, max = 120): string => {
  const flat = s.replace(/[\p{Cc}\p{Zl}\p{Zp}]+/gu, ' ').trim()
  return flat.length > max ? `${flat.slice(0, max - 1)}…` : flat
}

/** An excerpt of a message: its first characters, whitespace folded. */
export const excerpt = (s: string, max = 280): string => {
  const flat = s.replace(/\s+/g, ' ').trim()
  return flat.length > max ? `${flat.slice(0, max - 1)}…` : flat
}

const layout = (title: string, body: string, footer: string): string =>
  `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(title)}</title></head>
<body style="font-family:system-ui,sans-serif;font-size:15px;color:#222;max-width:36rem;margin:0 auto;padding:1.5rem">
${body}
<hr style="border:0;border-top:1px solid #ddd;margin:2rem 0 1rem">
<p style="font-size:12px;color:#777">${footer}</p>
</body></html>`

const button = (href: string, label: string): string =>
  `<p><a href="${escapeHtml(href)}" style="display:inline-block;background:#2457d6;color:#fff;padding:.6rem 1.1rem;border-radius:6px;text-decoration:none">${escapeHtml(label)}</a></p>`

/** When an invite expires, as people read it (UTC, to the minute). */
const whenUtc = (iso: string): string => `${new Date(iso).toISOString().slice(0, 16).replace('T', ' ')} UTC`

export type InviteMailInput = {
  readonly orgName: string
  /** The inviter's display name, or null when it is unknown (or erased). */
  readonly inviterName: string | null
  readonly acceptUrl: string
  /** ISO time. */
  readonly expiresAt: string
}

/** An invite: who asks the recipient to join which org, the link to accept, and when it expires. */
export function inviteMail(i: InviteMailInput): RenderedMail {
  const who = i.inviterName ? oneLine(i.inviterName, 60) : 'Someone'
  const org = oneLine(i.orgName, 80)
  const subject = oneLine(`${who} invited you to ${org}`)
  const text = [
    `${who} invited you to join ${org}.`,
    '',
    'Accept the invitation (sign in with this email address first):',
    i.acceptUrl,
    '',
    `The invitation expires on ${whenUtc(i.expiresAt)}. If you did not expect it, ignore this mail.`,
  ].join('\n')
  const html = layout(
    subject,
    `<p><strong>${escapeHtml(who)}</strong> invited you to join <strong>${escapeHtml(org)}</strong>.</p>
<p>Sign in with this email address, then accept the invitation:</p>
${button(i.acceptUrl, `Join ${org}`)}
<p style="font-size:13px;color:#555">Or open this link: <a href="${escapeHtml(i.acceptUrl)}">${escapeHtml(i.acceptUrl)}</a></p>
<p style="font-size:13px;color:#555">The invitation expires on ${escapeHtml(whenUtc(i.expiresAt))}.</p>`,
    'If you did not expect this invitation, ignore this mail: nothing happens unless you accept it.',
  )
  return { subject, text, html }
}

export type MissedMessage = {
  readonly authorName: string
  readonly text: string
  /** ISO time. */
  readonly at: string
}

export type MissedMentionsMailInput = {
  /** The room's name; null for a direct message. */
  readonly roomName: string | null
  readonly orgName: string
  readonly roomUrl: string
  /** Where the recipient turns these mails off. */
  readonly settingsUrl: string
  readonly messages: readonly MissedMessage[]
}

/** What a person missed in one room (mentions, or a DM), batched into one mail, oldest first. */
export function missedMentionsMail(m: MissedMentionsMailInput): RenderedMail {
  const authors = [...new Set(m.messages.map((x) => oneLine(x.authorName, 40)))]
  const who = authors.length <= 2 ? authors.join(' and ') : `${authors.slice(0, 2).join(', ')} and ${authors.length - 2} more`
  const where = m.roomName === null ? 'a direct message' : `#${oneLine(m.roomName, 60)}`
  const n = m.messages.length
  const subject = oneLine(
    m.roomName === null
      ? `${who} sent you ${n === 1 ? 'a message' : `${n} messages`} in ${oneLine(m.orgName, 60)}`
      : `${who} mentioned you in ${where} (${oneLine(m.orgName, 60)})`,
  )
  const text = [
    `You have ${n === 1 ? 'an unread message' : `${n} unread messages`} in ${where} of ${oneLine(m.orgName, 80)}:`,
    '',
    ...m.messages.flatMap((x) => [`${oneLine(x.authorName, 60)} (${whenUtc(x.at)}):`, `  ${excerpt(x.text)}`, '']),
    `Open the conversation: ${m.roomUrl}`,
    '',
    `You get at most one such mail per conversation per hour. Turn them off: ${m.settingsUrl}`,
  ].join('\n')
  const items = m.messages
    .map(
      (x) => `<div style="margin:0 0 1rem;padding:.6rem .8rem;border-left:3px solid #2457d6;background:#f5f7fc">
<div style="font-size:13px;color:#555"><strong>${escapeHtml(oneLine(x.authorName, 60))}</strong> · ${escapeHtml(whenUtc(x.at))}</div>
<div>${escapeHtml(excerpt(x.text))}</div></div>`,
    )
    .join('\n')
  const html = layout(
    subject,
    `<p>You have ${n === 1 ? 'an unread message' : `${n} unread messages`} in <strong>${escapeHtml(where)}</strong> of ${escapeHtml(oneLine(m.orgName, 80))}:</p>
${items}
${button(m.roomUrl, 'Open the conversation')}`,
    `You get at most one such mail per conversation per hour. <a href="${escapeHtml(m.settingsUrl)}">Turn these mails off</a>.`,
  )
  return { subject, text, html }
}
