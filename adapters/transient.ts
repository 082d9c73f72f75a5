/*
 * Whether a failure belongs to a backing service (Postgres, Redis, the network) rather than to the work being
 * done: such a failure is retried as long as it lasts and never blamed on an event. The codes and messages are
 * those http/errors.ts answers 503 for, plus Postgres's rollback class (serialization failures,
 * deadlocks), lock timeouts, ioredis's command timeout and Redis's "not now" replies: all pass when tried again.
 */

const CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN', '55P03'])
/** SQLSTATE classes: 08 connection exception, 40 transaction rollback, 53 insufficient resources, 57P operator intervention. */
const CLASSES = /^(08|40|53|57P)/
const MESSAGES =
  /Connection terminated|not queryable|connection error|terminating connection|timeout exceeded when trying to connect|Connection is closed|max retries|Stream isn't writeable|Command timed out/i
/** Redis answers that mean "not now": a restarted server loading its data, a cluster failing over. */
const REDIS_REPLIES = /^(LOADING|TRYAGAIN|CLUSTERDOWN|MASTERDOWN) /

export const isTransient = (e: unknown): boolean => {
  for (let cur = e, depth = 0; cur && depth < 5; cur = (cur as { cause?: unknown }).cause, depth++) {
    // An error may say so itself (a process missing the secret every process shares): it is not the event's.
    if ((cur as { transient?: unknown }).transient === true) return true
    const code = (cur as { code?: unknown }).code
    if (typeof code === 'string' && (CODES.has(code) || CLASSES.test(code))) return true
    if (cur instanceof Error && (MESSAGES.test(cur.message) || REDIS_REPLIES.test(cur.message))) return true
  }
  return false
}
