import { STREAM_START_ID, type UserEvent, type UserStreams } from '../adapters/user-streams.ts'

type Data = Record<string, unknown> & { userId?: string }

/** The person an entry says was erased (a delivered user.erased), else null. */
export const erasedBy = (entry: Pick<UserEvent, 'type' | 'data'>): string | null => {
  const d = entry.data as Data & { change?: string }
  return entry.type === 'workspace.user_changed' && d.change === 'user.erased' ? (d.userId ?? null) : null
}

/**
 * Removes from one user's stream what an erased person said there: their messages and edits, and their name as
 * they joined. The outbox calls it once it appended the erasure to that stream, so everything delivered before it
 * is in the stream to find. An edit whose message's creation is not in this stream (trimmed away, or
 * sent before the user could read the room) names no author and stays.
 */
export async function forgetInStream(streams: UserStreams, userId: string, erased: string): Promise<void> {
  const messages = new Set<string>()
  const ids: string[] = []
  for (let after = STREAM_START_ID; ; ) {
    const { events } = await streams.read(userId, after, 1_000)
    if (events.length === 0) break
    for (const e of events) {
      const d = e.data as Data & { authorId?: string; messageId?: string; change?: string }
      if (e.type === 'message.created' && d.authorId === erased) messages.add(d.messageId!)
      const said = (e.type === 'message.created' || e.type === 'message.updated') && messages.has(d.messageId!)
      const joined = e.type === 'workspace.user_changed' && d.change === 'user.joined' && d.userId === erased
      if (said || joined) ids.push(e.id)
    }
    after = events.at(-1)!.id
  }
  await streams.remove(userId, ids)
}
