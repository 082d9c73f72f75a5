import { createHash, randomBytes } from 'node:crypto'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { join } from 'node:path'
import type { HttpBindings } from '@hono/node-server'
import { RESPONSE_ALREADY_SENT } from '@hono/node-server/utils/response'
import { Hono } from 'hono'
import { calculateJwkThumbprint, exportJWK, generateKeyPair, type JWK } from 'jose'
import Provider, {
  type Adapter,
  type AdapterFactory,
  type AdapterPayload,
  type Configuration,
  type KoaContextWithOIDC,
  errors as oidcErrors,
} from 'oidc-provider'
import { loadOrCreateJsonFile } from './json-file-store.ts'

/**
 * The local development OpenID Provider (oidc-provider), used when OIDC_ISSUER is unset.
 *
 * A real OP: discovery, JWKS, authorization code with PKCE (required, S256), token endpoint,
 * userinfo. Its login page takes any email and signs that person in: the account id is derived
 * from the email, the ID token carries `email` and `email_verified: true`. Consent is implied for
 * the one registered (first-party) client. Signing keys and cookie keys are generated once and
 * kept under `dataDir`, so tokens and cookies survive restarts; sessions, codes and grants are in
 * memory.
 *
 * Mount it at `mountPath` (default `/dev-idp`) of a server whose public origin is `publicUrl`:
 * the issuer is `<publicUrl><mountPath>`.
 */

export type DevIdpClient = {
  clientId: string
  clientSecret: string
  redirectUris: string[]
  tokenEndpointAuthMethod?: 'client_secret_basic' | 'client_secret_post'
  postLogoutRedirectUris?: string[]
}

export type DevIdpOptions = {
  /** Public origin of the server, e.g. http://localhost:3000 (a path, if any, is kept). */
  publicUrl: string
  /** Where `jwks.json` and `cookie-keys.json` live, e.g. `.data/dev-idp`. */
  dataDir: string
  client: DevIdpClient
  mountPath?: string
  /** Trust X-Forwarded-Proto/Host (behind a TLS-terminating proxy). Default false. */
  trustProxy?: boolean
  /** The dev IdP signs anyone in: it refuses to start when this is 'production' unless allowInProduction. */
  environment?: string
  allowInProduction?: boolean
}

export type NodeHandler = (req: IncomingMessage, res: ServerResponse) => Promise<void>

export type DevIdp = {
  issuer: string
  mountPath: string
  provider: Provider
  /** Node handler for every request under mountPath (the full path, prefix included). */
  handle: NodeHandler
}

export const DEV_IDP_MOUNT_PATH = '/dev-idp'
const SCOPES = ['openid', 'email', 'profile']

/** Stable account id for an email (the dev IdP's `sub`). */
export const devIdpAccountId = (email: string): string =>
  `dev_${createHash('sha256').update(normalizeEmail(email), 'utf8').digest('hex').slice(0, 32)}`

export const normalizeEmail = (email: string): string => email.trim().toLowerCase()

const EMAIL = /^[^\s@<>"']+@[^\s@<>"']+\.[^\s@<>"']+$/
export const isPlausibleEmail = (email: string): boolean => email.length <= 254 && EMAIL.test(email)

// ---------------------------------------------------------------------------------------------
// key material

type PrivateJwks = { keys: JWK[] }

function parsePrivateJwks(value: unknown): PrivateJwks {
  const keys = (value as { keys?: unknown } | null)?.keys
  if (!Array.isArray(keys) || keys.length === 0) throw new Error('keys: expected a non-empty array')
  for (const k of keys as JWK[]) {
    if (typeof k !== 'object' || k === null || typeof k.d !== 'string' || typeof k.kid !== 'string') {
      throw new Error('keys: every key must be a private JWK with a kid')
    }
  }
  if (!(keys as JWK[]).some((k) => k.kty === 'RSA')) throw new Error('keys: an RSA key is required (RS256 ID tokens)')
  return { keys: keys as JWK[] }
}

async function generateSigningJwk(alg: 'RS256' | 'ES256'): Promise<JWK> {
  const { publicKey, privateKey } = await generateKeyPair(alg, { extractable: true, modulusLength: 2048 })
  const kid = await calculateJwkThumbprint(await exportJWK(publicKey))
  return { ...(await exportJWK(privateKey)), kid, alg, use: 'sig' }
}

/** The provider's signing keys, generated on first use and kept in `<dataDir>/jwks.json`. */
export const loadOrCreateDevIdpJwks = (dataDir: string): Promise<PrivateJwks> =>
  loadOrCreateJsonFile(join(dataDir, 'jwks.json'), parsePrivateJwks, async () => ({
    keys: [await generateSigningJwk('RS256'), await generateSigningJwk('ES256')],
  }))

const loadOrCreateCookieKeys = (dataDir: string): Promise<{ keys: string[] }> =>
  loadOrCreateJsonFile(
    join(dataDir, 'cookie-keys.json'),
    (v) => {
      const keys = (v as { keys?: unknown } | null)?.keys
      if (!Array.isArray(keys) || keys.length === 0 || !keys.every((k) => typeof k === 'string' && k.length >= 32)) {
        throw new Error('keys: expected strings of at least 32 characters')
      }
      return { keys: keys as string[] }
    },
    async () => ({ keys: [randomBytes(32).toString('base64url')] }),
  )

// ---------------------------------------------------------------------------------------------
// storage: sessions, interactions, codes and grants live in memory on purpose (a restart signs
// people out of the dev IdP, nothing else). Bounded, expiring, one store per provider.

type Entry = { payload: AdapterPayload; expiresAt: number }
const GRANTABLE = new Set(['AccessToken', 'AuthorizationCode', 'RefreshToken', 'DeviceCode', 'BackchannelAuthenticationRequest'])

export function memoryAdapterFactory(maxEntries = 10_000): AdapterFactory {
  const entries = new Map<string, Entry>()
  const byUid = new Map<string, string>()
  const byUserCode = new Map<string, string>()
  const grants = new Map<string, Set<string>>()
  const live = (key: string): AdapterPayload | undefined => {
    const entry = entries.get(key)
    if (!entry) return undefined
    if (entry.expiresAt <= Date.now()) {
      entries.delete(key)
      return undefined
    }
    return entry.payload
  }
  const evict = () => {
    const now = Date.now()
    for (const [key, entry] of entries) if (entry.expiresAt <= now) entries.delete(key)
    // Still full: drop the oldest (Map keeps insertion order).
    for (const key of entries.keys()) {
      if (entries.size < maxEntries) break
      entries.delete(key)
    }
  }
  return (model: string): Adapter => {
    const key = (id: string) => `${model}:${id}`
    return {
      async upsert(id, payload, expiresIn) {
        if (entries.size >= maxEntries) evict()
        entries.set(key(id), { payload, expiresAt: expiresIn ? Date.now() + expiresIn * 1000 : Number.POSITIVE_INFINITY })
        if (model === 'Session' && payload.uid) byUid.set(payload.uid, id)
        if (payload.userCode) byUserCode.set(payload.userCode, id)
        if (GRANTABLE.has(model) && payload.grantId) {
          const members = grants.get(payload.grantId) ?? new Set<string>()
          members.add(key(id))
          grants.set(payload.grantId, members)
        }
      },
      async find(id) {
        return live(key(id))
      },
      async findByUid(uid) {
        const id = byUid.get(uid)
        return id === undefined ? undefined : live(key(id))
      },
      async findByUserCode(userCode) {
        const id = byUserCode.get(userCode)
        return id === undefined ? undefined : live(key(id))
      },
      async consume(id) {
        const payload = live(key(id))
        if (payload) payload.consumed = Math.floor(Date.now() / 1000)
      },
      async destroy(id) {
        const payload = live(key(id))
        entries.delete(key(id))
        if (payload?.uid && byUid.get(payload.uid) === id) byUid.delete(payload.uid)
      },
      async revokeByGrantId(grantId) {
        for (const member of grants.get(grantId) ?? []) entries.delete(member)
        grants.delete(grantId)
      },
    }
  }
}

// ---------------------------------------------------------------------------------------------
// HTML

const escapeHtml = (s: string): string =>
  s.replace(/[&<>"']/g, (ch) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[ch] ?? ch)

const page = (title: string, body: string): string => `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title>
<style>body{font-family:system-ui,sans-serif;max-width:26rem;margin:4rem auto;padding:0 1rem}
input,button{font:inherit;padding:.5rem;width:100%;box-sizing:border-box;margin:.25rem 0}
.note{color:#666;font-size:.9rem}.error{color:#b00020}</style></head>
<body>${body}</body></html>`

function loginPage(action: string, abort: string, clientName: string, email: string, error?: string): string {
  return page(
    'Sign in (development)',
    `<h1>Sign in</h1>
<p class="note">Development identity provider for <strong>${escapeHtml(clientName)}</strong>: any email signs that person in, no password.</p>
${error ? `<p class="error" role="alert">${escapeHtml(error)}</p>` : ''}
<form method="post" action="${escapeHtml(action)}" autocomplete="off">
<label for="email">Email</label>
<input id="email" name="email" type="email" required autofocus value="${escapeHtml(email)}">
<button type="submit">Sign in</button>
</form>
<form method="post" action="${escapeHtml(abort)}"><button type="submit">Cancel</button></form>`,
  )
}

function send(res: ServerResponse, status: number, html: string): void {
  res.statusCode = status
  res.setHeader('content-type', 'text/html; charset=utf-8')
  res.setHeader('cache-control', 'no-store')
  res.setHeader('x-frame-options', 'DENY')
  res.setHeader('content-security-policy', "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'")
  res.end(html)
}

async function readForm(req: IncomingMessage, limit = 16 * 1024): Promise<URLSearchParams> {
  const type = req.headers['content-type'] ?? ''
  if (!type.toLowerCase().startsWith('application/x-www-form-urlencoded')) return new URLSearchParams()
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length
    if (size > limit) throw new Error('form too large')
    chunks.push(chunk)
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'))
}

// ---------------------------------------------------------------------------------------------
// provider

export async function createDevIdp(options: DevIdpOptions): Promise<DevIdp> {
  if (options.environment === 'production' && !options.allowInProduction) {
    throw new Error(
      'the dev IdP signs anyone in and must not run in production: set OIDC_ISSUER, OIDC_CLIENT_ID, OIDC_CLIENT_SECRET',
    )
  }
  const mountPath = `/${(options.mountPath ?? DEV_IDP_MOUNT_PATH).replace(/^\/+|\/+$/g, '')}`
  const base = new URL(options.publicUrl)
  const issuer = `${base.origin}${base.pathname.replace(/\/+$/, '')}${mountPath}`
  // Requests reach the handler with their full path: the prefix to strip is the issuer's path.
  const prefix = new URL(issuer).pathname

  const [jwks, cookieKeys] = await Promise.all([loadOrCreateDevIdpJwks(options.dataDir), loadOrCreateCookieKeys(options.dataDir)])
  const accounts = new Map<string, string>() // account id -> email
  const { client } = options

  const configuration: Configuration = {
    adapter: memoryAdapterFactory(),
    clients: [
      {
        client_id: client.clientId,
        client_secret: client.clientSecret,
        client_name: 'workspace (development)',
        redirect_uris: client.redirectUris,
        post_logout_redirect_uris: client.postLogoutRedirectUris ?? [],
        grant_types: ['authorization_code'],
        response_types: ['code'],
        token_endpoint_auth_method: client.tokenEndpointAuthMethod ?? 'client_secret_basic',
        id_token_signed_response_alg: 'RS256',
      },
    ],
    jwks,
    cookies: {
      keys: cookieKeys.keys,
      names: { session: '_devidp_session', interaction: '_devidp_interaction', resume: '_devidp_resume' },
      // `secure` follows the request: set behind https, absent on plain http (local development).
      // The IdP's session cookie stays under its own path, away from the app's cookies.
      long: { httpOnly: true, sameSite: 'lax', path: prefix },
      short: { httpOnly: true, sameSite: 'lax' },
    },
    pkce: { required: () => true },
    scopes: SCOPES,
    claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'] },
    // The ID token carries the email (a code-flow RP need not call userinfo).
    conformIdTokenClaims: false,
    features: {
      devInteractions: { enabled: false },
      userinfo: { enabled: true },
      rpInitiatedLogout: { enabled: true },
      revocation: { enabled: false },
      introspection: { enabled: false },
    },
    clientBasedCORS: () => false,
    ttl: {
      AccessToken: 60 * 60,
      AuthorizationCode: 60,
      IdToken: 60 * 60,
      Interaction: 15 * 60,
      Session: 24 * 60 * 60,
      Grant: 24 * 60 * 60,
    },
    interactions: {
      url: (_ctx: KoaContextWithOIDC, interaction) => `${prefix}/interaction/${interaction.uid}`,
    },
    findAccount: (_ctx, sub) => {
      const email = accounts.get(sub)
      if (!email) return undefined
      return {
        accountId: sub,
        claims: () => ({ sub, email, email_verified: true, name: email.split('@')[0] }),
      }
    },
    // First-party client: consent is implied, a grant for our scopes is created on first sign-in.
    loadExistingGrant: async (ctx) => {
      const oidc = ctx.oidc
      const clientId = oidc.client?.clientId
      const accountId = oidc.session?.accountId
      if (!clientId || !accountId) return undefined
      const grantId = oidc.result?.consent?.grantId ?? oidc.session?.grantIdFor(clientId)
      if (grantId) {
        const existing = await oidc.provider.Grant.find(grantId)
        if (existing) return existing
      }
      const grant = new oidc.provider.Grant({ clientId, accountId })
      grant.addOIDCScope(SCOPES.join(' '))
      await grant.save()
      return grant
    },
    renderError: (ctx, out) => {
      ctx.type = 'html'
      ctx.body = page(
        'Sign-in error',
        `<h1>Sign-in error</h1>${Object.entries(out)
          .map(([k, v]) => `<p><strong>${escapeHtml(k)}</strong>: ${escapeHtml(String(v))}</p>`)
          .join('')}`,
      )
    },
  }

  const provider = new Provider(issuer, configuration)
  provider.proxy = options.trustProxy ?? false
  const callback = provider.callback()

  async function interaction(req: IncomingMessage, res: ServerResponse, uid: string, action: string | undefined): Promise<void> {
    const details = await provider.interactionDetails(req, res)
    if (details.uid !== uid)
      return send(res, 400, page('Sign-in error', '<h1>This sign-in link does not match your session.</h1>'))
    const self = `${prefix}/interaction/${uid}`
    const clientName = client.clientId

    if (action === '/abort' && req.method === 'POST') {
      await provider.interactionFinished(
        req,
        res,
        { error: 'access_denied', error_description: 'End-User aborted interaction' },
        { mergeWithLastSubmission: false },
      )
      return
    }

    if (details.prompt.name === 'consent') {
      // Only reached if an existing grant lacks a scope: extend it, consent is implied.
      const accountId = details.session?.accountId
      if (!accountId) throw new oidcErrors.SessionNotFound('no account in session')
      const grant =
        (details.grantId && (await provider.Grant.find(details.grantId))) ||
        new provider.Grant({ accountId, clientId: client.clientId })
      const missing = details.prompt.details.missingOIDCScope
      if (Array.isArray(missing)) grant.addOIDCScope(missing.join(' '))
      const missingClaims = details.prompt.details.missingOIDCClaims
      if (Array.isArray(missingClaims)) grant.addOIDCClaims(missingClaims as string[])
      await provider.interactionFinished(
        req,
        res,
        { consent: { grantId: await grant.save() } },
        { mergeWithLastSubmission: true },
      )
      return
    }

    if (details.prompt.name !== 'login') {
      return send(res, 501, page('Sign-in error', `<h1>Unsupported prompt ${escapeHtml(details.prompt.name)}</h1>`))
    }

    if (action === '/login' && req.method === 'POST') {
      const form = await readForm(req)
      const email = normalizeEmail(form.get('email') ?? '')
      if (!isPlausibleEmail(email)) {
        return send(res, 400, loginPage(`${self}/login`, `${self}/abort`, clientName, email, 'Enter a valid email address.'))
      }
      const accountId = devIdpAccountId(email)
      accounts.set(accountId, email)
      await provider.interactionFinished(req, res, { login: { accountId, remember: true } }, { mergeWithLastSubmission: false })
      return
    }

    if (action === undefined && (req.method === 'GET' || req.method === 'HEAD')) {
      const hint = typeof details.params.login_hint === 'string' ? details.params.login_hint : ''
      return send(res, 200, loginPage(`${self}/login`, `${self}/abort`, clientName, hint))
    }
    return send(res, 405, page('Sign-in error', '<h1>Method not allowed</h1>'))
  }

  const handle: NodeHandler = async (req, res) => {
    const original = req.url ?? '/'
    const queryAt = original.indexOf('?')
    const path = queryAt === -1 ? original : original.slice(0, queryAt)
    if (path !== prefix && !path.startsWith(`${prefix}/`)) {
      res.statusCode = 404
      res.end()
      return
    }
    const inner = original.slice(prefix.length) || '/'
    const innerPath = path.slice(prefix.length)
    try {
      const m = /^\/interaction\/([A-Za-z0-9_-]{1,64})(\/login|\/abort)?$/.exec(innerPath)
      if (m?.[1]) {
        await interaction(req, res, m[1], m[2])
        return
      }
      // Mounted like express' app.use(prefix, …): oidc-provider routes on the stripped url and
      // derives its own absolute URLs from originalUrl.
      ;(req as IncomingMessage & { originalUrl?: string }).originalUrl = original
      req.url = inner.startsWith('/') ? inner : `/${inner}`
      await callback(req, res)
    } catch (e) {
      if (res.headersSent) {
        res.destroy(e as Error)
        return
      }
      const expired = e instanceof oidcErrors.SessionNotFound
      send(
        res,
        expired ? 400 : 500,
        page(
          'Sign-in error',
          expired ? '<h1>This sign-in has expired. Start again from the app.</h1>' : '<h1>Sign-in failed.</h1>',
        ),
      )
    }
  }

  return { issuer, mountPath: prefix, provider, handle }
}

/**
 * A hono sub-app for @hono/node-server: mount with `app.route('/dev-idp', devIdpRoutes(idp))`.
 * It answers through the raw node response, so mount it before any middleware that reads
 * the request body.
 */
export function devIdpRoutes(idp: DevIdp): Hono<{ Bindings: HttpBindings }> {
  const app = new Hono<{ Bindings: HttpBindings }>()
  app.all('*', async (c) => {
    const { incoming, outgoing } = c.env ?? {}
    if (!incoming || !outgoing) throw new Error('the dev IdP needs the @hono/node-server bindings (c.env.incoming/outgoing)')
    await idp.handle(incoming, outgoing)
    return RESPONSE_ALREADY_SENT
  })
  return app
}
