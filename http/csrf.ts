import type { Context } from 'hono'
import { forbidden } from './problem.ts'

/*
 * CSRF: unsafe methods authenticated by the session cookie must come with an Origin (or Referer) of the same
 * host or of PUBLIC_URL; bearer requests carry no ambient credential and are exempt.
 */

const SAFE = new Set(['GET', 'HEAD', 'OPTIONS'])

/** GET, HEAD and OPTIONS change nothing. */
export const isSafeMethod = (method: string): boolean => SAFE.has(method)

/** Where the browser says the request comes from: its Origin or, lacking it, its Referer (null if neither is usable). */
function claimedOrigin(c: Context): URL | null {
  const claimed = c.req.header('origin') ?? c.req.header('referer')
  return claimed && claimed !== 'null' && URL.canParse(claimed) ? new URL(claimed) : null
}

/** Whether `from` is the request's own host (over https whenever the site is). */
function isThisHost(c: Context, from: URL, site: URL): boolean {
  const host = c.req.header('host')?.toLowerCase()
  return host !== undefined && from.host.toLowerCase() === host && (site.protocol !== 'https:' || from.protocol === 'https:')
}

const csrfRejected = (detail: string) => forbidden(detail, 'CSRF_REJECTED')

/**
 * Cookie-authenticated unsafe requests must say where they come from: the Origin (or, lacking it, the
 * Referer) must be this host or PUBLIC_URL. SameSite=Lax already keeps the cookie off cross-site POSTs;
 * this covers sibling subdomains and older browsers.
 */
export function checkOrigin(c: Context, publicUrl: string): void {
  if (isSafeMethod(c.req.method)) return
  const site = new URL(publicUrl)
  const from = claimedOrigin(c)
  if (!from || (from.origin !== site.origin && !isThisHost(c, from, site))) {
    throw csrfRejected('a cookie-authenticated change must come from this site (Origin)')
  }
}

/**
 * Stricter than checkOrigin, for a request that signs the browser in rather than one that rides a cookie
 * (the handoff): it must come from a page of this very host, so no other site (the login host included)
 * can make a browser take someone else's sign-in.
 */
export function checkSameHost(c: Context, publicUrl: string): void {
  const from = claimedOrigin(c)
  if (!from || !isThisHost(c, from, new URL(publicUrl))) throw csrfRejected('this must be sent from a page of this host (Origin)')
}
