import type { Context } from 'hono'
import { deleteCookie, generateCookie, getCookie, getSignedCookie, setCookie, setSignedCookie } from 'hono/cookie'
import type { CookieOptions } from 'hono/utils/cookie'

/*
 * The browser's cookies, through hono's cookie helpers. Every cookie of ours is HttpOnly, SameSite=Lax,
 * Secure when PUBLIC_URL is https, and host-only (no Domain): the login host and each org host have their own.
 */

export const SESSION_COOKIE = 'ws_session'

const attributes = (publicUrl: string, path: string): CookieOptions => ({
  path,
  httpOnly: true,
  sameSite: 'Lax',
  secure: publicUrl.startsWith('https:'),
})

/** The session cookie's value (a session token), if the request carries one. */
export const sessionCookie = (c: Context): string | null => getCookie(c, SESSION_COOKIE) || null

export function setSessionCookie(c: Context, publicUrl: string, token: string, expiresAt: string): void {
  setCookie(c, SESSION_COOKIE, token, {
    ...attributes(publicUrl, '/'),
    maxAge: Math.max(0, Math.floor((Date.parse(expiresAt) - Date.now()) / 1000)),
  })
}

export const clearSessionCookie = (c: Context, publicUrl: string): void => {
  deleteCookie(c, SESSION_COOKIE, attributes(publicUrl, '/'))
}

type Expiring = { publicUrl: string; path: string; secret: Uint8Array }

/**
 * Sets a signed cookie (hono's HMAC-SHA256) holding `value` for `ttlMs`. The expiry and the cookie's name are
 * inside what is signed, so a copy kept past its Max-Age, or moved to another cookie name, is refused.
 */
export async function setExpiringSignedCookie(
  c: Context,
  name: string,
  value: unknown,
  ttlMs: number,
  { publicUrl, path, secret }: Expiring,
): Promise<void> {
  const body = Buffer.from(JSON.stringify({ n: name, v: value, exp: Date.now() + ttlMs }), 'utf8').toString('base64url')
  await setSignedCookie(c, name, body, secret, { ...attributes(publicUrl, path), maxAge: Math.floor(ttlMs / 1000) })
}

/** The value of a cookie set by setExpiringSignedCookie; null when absent, tampered with, renamed or expired. */
export async function expiringSignedCookie<T>(
  c: Context,
  name: string,
  secret: Uint8Array,
  nowMs = Date.now(),
): Promise<T | null> {
  const body = await getSignedCookie(c, secret, name)
  if (!body) return null
  try {
    const parsed = JSON.parse(Buffer.from(body, 'base64url').toString('utf8')) as { n?: unknown; v: T; exp?: unknown }
    return parsed.n === name && typeof parsed.exp === 'number' && parsed.exp > nowMs ? parsed.v : null
  } catch {
    return null
  }
}

/**
 * The Set-Cookie header that removes an expiring cookie: set on the context, and returned for answers that
 * are new responses (problem+json errors) and would not carry the context's headers.
 */
export function spendCookie(c: Context, name: string, { publicUrl, path }: Omit<Expiring, 'secret'>): string {
  const spent = generateCookie(name, '', { ...attributes(publicUrl, path), maxAge: 0 })
  c.header('set-cookie', spent, { append: true })
  return spent
}
