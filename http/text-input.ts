import type { MiddlewareHandler } from 'hono'
import { badRequest, type FieldError } from './problem.ts'

/*
 * Postgres stores no NUL (U+0000) in text or jsonb: one that reached a query would fail there, as a 500.
 * It is refused here, once for every route, wherever a client can put it: the path, the query string and
 * JSON bodies (headers cannot carry it: Node's parser refuses them).
 */

const MESSAGE = 'must not contain the NUL character (U+0000)'
const NUL = '\u0000'
// A NUL can only be in a JSON text as this escape (a raw one is invalid JSON, refused by the parser).
const ESCAPED_NUL = '\\u0000'

const at = (path: readonly string[]) => path.join('.') || '(body)'

/** Every place in a JSON value holding a NUL, in a value or in a key (named by the object that holds it). */
function collectNuls(value: unknown, path: readonly string[], out: FieldError[]): void {
  if (typeof value === 'string') {
    if (value.includes(NUL)) out.push({ path: at(path), message: MESSAGE })
  } else if (Array.isArray(value)) {
    for (const [i, item] of value.entries()) collectNuls(item, [...path, String(i)], out)
  } else if (value !== null && typeof value === 'object') {
    for (const [key, item] of Object.entries(value)) {
      if (key.includes(NUL)) out.push({ path: at(path), message: `a key ${MESSAGE}` })
      else collectNuls(item, [...path, key], out)
    }
  }
}

async function jsonBodyNuls(req: Request): Promise<FieldError[]> {
  if (!req.body || !/json/i.test(req.headers.get('content-type') ?? '')) return []
  // A clone: the raw body stays unread for the validators and the idempotency hash.
  const text = await req.clone().text()
  if (!text.includes(ESCAPED_NUL)) return []
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch {
    // Not JSON: the route's validation answers that.
    return []
  }
  const found: FieldError[] = []
  collectNuls(parsed, [], found)
  return found
}

export const refuseNul = (): MiddlewareHandler => async (c, next) => {
  const url = new URL(c.req.url)
  const errors: FieldError[] = []
  // The pathname keeps its percent-encoding; route parameters are decoded later, NUL included.
  if (/%00/.test(url.pathname)) errors.push({ path: '(path)', message: MESSAGE })
  for (const [key, value] of url.searchParams) {
    if (key.includes(NUL)) errors.push({ path: '(query)', message: `a parameter name ${MESSAGE}` })
    else if (value.includes(NUL)) errors.push({ path: key, message: MESSAGE })
  }
  // A GET or HEAD has no body to look at; asking for one would build the whole web Request (node-server makes it
  // lazily), a few KB that every held long poll would keep.
  if (c.req.method !== 'GET' && c.req.method !== 'HEAD') errors.push(...(await jsonBodyNuls(c.req.raw)))
  if (errors.length > 0) throw badRequest('text fields must not contain the NUL character (U+0000)', errors)
  await next()
}
