import type { Context } from 'hono'
import { HTTPException } from 'hono/http-exception'
import { ZodError } from 'zod'
import { PartialIdempotencyError, WrongExpectedRevisionError } from '../adapters/event-store.ts'
import type { Logger } from '../adapters/logger.ts'
import { DomainError } from '../domain/decider.ts'
import { type FieldError, HttpProblem, type Problem, renderProblem } from './problem.ts'

const domainStatus = { rule: 422, conflict: 409, not_found: 404, forbidden: 403 } as const
const domainTitle = {
  rule: 'Refused',
  conflict: 'Conflict',
  not_found: 'Not found',
  forbidden: 'Forbidden',
} as const

export const zodFieldErrors = (e: ZodError): FieldError[] =>
  e.issues.map((i) => ({ path: i.path.map(String).join('.') || '(body)', message: i.message }))

/** What a registered error answers besides its status and code: the detail defaults to the error's message. */
export type ErrorShape = Partial<Pick<Problem, 'title' | 'detail' | 'errors' | 'headers'>>

// biome-ignore lint/suspicious/noExplicitAny: any error class, whatever its constructor takes
type ErrorClass = abstract new (...args: any[]) => Error

const errorStatuses: { errorClass: ErrorClass; toProblem: (e: Error) => Problem }[] = []

/**
 * The table errors map to statuses by: each layer registers the errors it defines (commands their
 * ConcurrencyError, bin/ the projections' consistency errors), so that this shell never imports a layer above
 * it. The first registration an error is an instance of answers.
 */
export function registerErrorStatus(
  errorClass: ErrorClass,
  status: Problem['status'],
  code: string,
  shape: ErrorShape = {},
): void {
  errorStatuses.push({
    errorClass,
    toProblem: (e) => ({ status, code, title: shape.title ?? code, detail: shape.detail ?? e.message, ...pick(shape) }),
  })
}

const pick = (shape: ErrorShape) => ({
  ...(shape.errors ? { errors: shape.errors } : {}),
  ...(shape.headers ? { headers: shape.headers } : {}),
})

registerErrorStatus(WrongExpectedRevisionError, 409, 'CONCURRENCY_CONFLICT', {
  title: 'Conflict',
  detail: 'a concurrent change won: try again',
})
registerErrorStatus(PartialIdempotencyError, 409, 'DUPLICATE', { title: 'Conflict' })

/** Translates every failure into a problem; only what no client could have caused is a 500. */
export function toProblem(e: unknown): Problem | null {
  if (e instanceof HttpProblem) return e.problem
  if (e instanceof DomainError) {
    return { status: domainStatus[e.kind], code: e.code, title: domainTitle[e.kind], detail: e.message }
  }
  if (e instanceof ZodError) {
    return {
      status: 400,
      code: 'INVALID_INPUT',
      title: 'Invalid input',
      detail: 'the request is invalid',
      errors: zodFieldErrors(e),
    }
  }
  for (const { errorClass, toProblem } of errorStatuses) {
    if (e instanceof errorClass) return toProblem(e)
  }
  if (e instanceof HTTPException) {
    const status = e.status
    if (status === 413)
      return {
        status,
        code: 'TOO_LARGE',
        title: 'Payload too large',
        detail: 'the request body is too large',
      }
    if (status < 500) {
      return {
        status,
        code: status === 400 ? 'INVALID_INPUT' : `HTTP_${status}`,
        title: e.message || 'Bad request',
        detail: e.message || 'bad request',
      }
    }
  }
  if (isUnstorableText(e)) {
    return {
      status: 400,
      code: 'INVALID_INPUT',
      title: 'Invalid input',
      detail: 'text must not contain the NUL character (U+0000)',
    }
  }
  if (isUnavailable(e)) {
    return {
      status: 503,
      code: 'UNAVAILABLE',
      title: 'Service unavailable',
      detail: 'a backing service is unavailable: retry shortly',
      headers: { 'retry-after': '2' },
    }
  }
  return null
}

const UNAVAILABLE_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
  '53300',
  '53400',
])
const UNAVAILABLE_MESSAGE =
  /Connection terminated|not queryable|connection error|terminating connection|timeout exceeded when trying to connect|Connection is closed|max retries|Stream isn't writeable/i

/**
 * Postgres refusing text it cannot store (NUL in text: 22021, in jsonb: 22P05). refuseNul keeps it out of what
 * clients send and sign-in out of ID token claims; a NUL reaching a query some other way is still their input.
 */
const isUnstorableText = (e: unknown): boolean => {
  for (let cur = e, depth = 0; cur && depth < 5; cur = (cur as { cause?: unknown }).cause, depth++) {
    const code = (cur as { code?: unknown }).code
    if (code === '22021' || code === '22P05') return true
  }
  return false
}

/** Database or cache unreachable or cut off: a 503 the client may retry, not a bug. */
export const isUnavailable = (e: unknown): boolean => {
  for (let cur = e, depth = 0; cur && depth < 5; cur = (cur as { cause?: unknown }).cause, depth++) {
    const code = (cur as { code?: unknown }).code
    // SQLSTATE classes 08 (connection exception) and 57P (operator intervention: shutdown, terminate).
    if (typeof code === 'string' && (UNAVAILABLE_CODES.has(code) || /^08|^57P/.test(code))) return true
    if (cur instanceof Error && UNAVAILABLE_MESSAGE.test(cur.message)) return true
  }
  return false
}

export const onError = (logger: Logger) => (e: Error, c: Context) => {
  const p = toProblem(e)
  if (p) {
    if (p.status >= 500) logger.warn({ err: e, requestId: c.get('requestId' as never) }, p.code)
    return renderProblem(c, p)
  }
  logger.error({ err: e, requestId: c.get('requestId' as never) }, 'unhandled error')
  return renderProblem(c, {
    status: 500,
    code: 'INTERNAL',
    title: 'Internal error',
    detail: 'something went wrong on our side',
  })
}
