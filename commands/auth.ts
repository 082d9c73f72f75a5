import { createRoute, z } from '@hono/zod-openapi'
import type { Context } from 'hono'
import { html } from 'hono/html'
import type { Actor } from '../adapters/event-store.ts'
import type { Identity } from '../adapters/identity.ts'
import { type IdTokenClaims, OidcDiscoveryError, OidcError, OidcJwksError } from '../adapters/oidc-client.ts'
import { membershipOf } from '../domain/orgs.ts'
import { type AuthDeps, requireAccount, requireAccountSession } from '../http/account-auth.ts'
import { loadAccount, loadOrg } from '../http/accounts.ts'
import type { AppEnv } from '../http/context.ts'
import {
  clearSessionCookie,
  expiringSignedCookie,
  setExpiringSignedCookie,
  setSessionCookie,
  spendCookie,
} from '../http/cookies.ts'
import { checkSameHost } from '../http/csrf.ts'
import { hostSlug, orgOfRequest, resolveOrg } from '../http/org-resolution.ts'
import type { Caller } from '../http/principal.ts'
import { HttpProblem, notFound } from '../http/problem.ts'
import { router } from '../http/router.ts'
import { json, jsonBody, problemResponse, Uuid } from '../http/schemas.ts'
import { bearerSecurity } from '../http/tenant-route.ts'
import {
  issueCredential,
  issueHandoff,
  previewHandoff,
  redeemHandoff,
  revokeCredential,
  SESSION_TTL_MS,
  signInAccount,
  TENANT_SESSION_TTL_MS,
} from './accounts.ts'
import { verifyAgentLogin } from './agents.ts'
import { commandContext, pipelineDeps } from './command-context.ts'

export { resolveOrg }

export const accountActor = (caller: Caller): Actor => ({ type: 'user', id: caller.credential.accountId })
const AUTH_ACTOR: Actor = { type: 'system', id: 'auth' }

const LOGIN_COOKIE = 'ws_login'
const LOGIN_TTL_MS = 10 * 60_000

/** Where to go after signing in: a path of this site only (never another origin). */
const safeReturnTo = (value: string | undefined): string => (value && /^\/(?![/\\])[^\s]{0,2000}$/.test(value) ? value : '/')

/** The person's email: from the ID token, or (some issuers keep it there) from userinfo. */
async function emailOf(
  identity: Identity,
  claims: IdTokenClaims,
  accessToken: string | undefined,
): Promise<{ email: string; verified: boolean } | null> {
  if (typeof claims.email === 'string') return { email: claims.email, verified: claims.email_verified === true }
  if (!accessToken) return null
  // Refused (another subject, an error answer, unreachable) or absent: no email.
  const info = await identity.oidc.userinfo(accessToken, claims.sub).catch(() => null)
  if (typeof info?.email !== 'string') return null
  return { email: info.email, verified: info.email_verified === true }
}

const Redirect = { description: 'a redirect', headers: z.object({ location: z.string() }) }

export const ACCOUNT_ONLY =
  'Only the account session (the login host’s cookie, or its value as a bearer) may: a tenant session, a personal API token or an agent token is 403 ACCOUNT_SESSION_REQUIRED.'

const routes = {
  login: createRoute({
    method: 'get',
    path: '/auth/login',
    tags: ['auth'],
    summary: 'Sign in: the OIDC authorization-code flow with PKCE, state and nonce',
    description:
      'Redirects to OIDC_ISSUER (the local dev IdP at /dev-idp when unset). State, nonce and PKCE verifier wait in a signed, http-only cookie for ten minutes.',
    request: { query: z.object({ returnTo: z.string().max(2000).optional() }) },
    responses: { 302: Redirect, 503: problemResponse('the identity provider cannot be reached') },
  }),
  callback: createRoute({
    method: 'get',
    path: '/auth/callback',
    tags: ['auth'],
    summary: 'The identity provider’s redirect: checks it, finds or creates the account, sets the session cookie',
    description:
      'The ID token is verified against the issuer’s JWKS (issuer, audience, expiry with 30 s of skew, nonce used once, asymmetric algorithms only). The session cookie is HttpOnly, SameSite=Lax, Secure when PUBLIC_URL is https.',
    request: {
      query: z.object({
        code: z.string().optional(),
        state: z.string().optional(),
        iss: z.string().optional(),
        error: z.string().optional(),
        error_description: z.string().optional(),
      }),
    },
    responses: {
      303: Redirect,
      400: problemResponse('no sign-in in progress (or it expired)'),
      401: problemResponse('the identity provider’s answer was refused'),
    },
  }),
  tenantSession: createRoute({
    method: 'post',
    path: '/auth/tenant-session',
    tags: ['auth'],
    summary: 'A tenant session for an org the account belongs to (a bearer token for API clients)',
    description: ACCOUNT_ONLY,
    security: bearerSecurity,
    request: jsonBody(z.object({ org: z.string().min(1).max(200).openapi({ description: 'org id or slug' }) })),
    responses: {
      200: json('the session', z.object({ token: z.string(), expiresAt: z.string(), orgId: Uuid, userId: Uuid })),
      403: problemResponse('a credential bound to one org (ACCOUNT_SESSION_REQUIRED)'),
      404: problemResponse('not a member of that org'),
    },
  }),
  handoff: createRoute({
    method: 'post',
    path: '/auth/handoff',
    tags: ['auth'],
    summary: 'A single-use ticket (one minute) that signs the browser in on the org’s host',
    description: `Open \`url\` in the browser: GET /auth/handoff on \`<slug>.<BASE_DOMAIN>\` asks the person to continue, and its form (POST /auth/handoff/redeem) redeems the ticket and sets that host’s session cookie. ${ACCOUNT_ONLY}`,
    security: bearerSecurity,
    request: jsonBody(z.object({ org: z.string().min(1).max(200), returnTo: z.string().max(2000).optional() })),
    responses: {
      200: json('the ticket', z.object({ url: z.string(), expiresAt: z.string() })),
      403: problemResponse('a credential bound to one org (ACCOUNT_SESSION_REQUIRED)'),
      404: problemResponse('not a member of that org'),
    },
  }),
  confirmHandoff: createRoute({
    method: 'get',
    path: '/auth/handoff',
    tags: ['auth'],
    summary: 'On the org host: a page that asks “Continue as <email> into <org>?” before redeeming a handoff ticket',
    description:
      'Opening the link signs nobody in (a link could be someone else’s ticket: login CSRF). The page, never cached and never framed, posts the ticket to POST /auth/handoff/redeem from this host.',
    request: { query: z.object({ ticket: z.string().min(1).max(200) }) },
    responses: {
      200: { description: 'the confirmation page', content: { 'text/html': { schema: z.string() } } },
      404: problemResponse('no such ticket, or another org’s host'),
      409: problemResponse('the ticket was used'),
      422: problemResponse('the ticket expired'),
    },
  }),
  redeemHandoff: createRoute({
    method: 'post',
    path: '/auth/handoff/redeem',
    tags: ['auth'],
    summary: 'On the org host: redeems a handoff ticket (the confirmation page’s form), sets the session cookie, redirects',
    description:
      'Form-encoded `ticket`. The Origin (or Referer) must be this very host, else 403 CSRF_REJECTED and the ticket stays unused.',
    request: {
      body: {
        content: { 'application/x-www-form-urlencoded': { schema: z.object({ ticket: z.string().min(1).max(200) }) } },
        required: true,
      },
    },
    responses: {
      303: Redirect,
      403: problemResponse('not sent from a page of this host (CSRF_REJECTED)'),
      404: problemResponse('no such ticket, or another org’s host'),
      409: problemResponse('the ticket was used'),
      422: problemResponse('the ticket expired'),
    },
  }),
  createToken: createRoute({
    method: 'post',
    path: '/auth/tokens',
    tags: ['auth'],
    summary: 'A personal API token acting as the account’s user in one org (shown once, stored hashed)',
    description: `Differs from the first contract: the body names the org (\`org\`, id or slug), since the caller is the account session and no org's credential. ${ACCOUNT_ONLY}`,
    security: bearerSecurity,
    request: jsonBody(
      z.object({
        org: z.string().min(1).max(200).openapi({ description: 'org id or slug' }),
        name: z.string().min(1).max(100),
        expiresInDays: z.number().int().min(1).max(365).default(90),
      }),
    ),
    responses: {
      201: json('the token', z.object({ id: Uuid, token: z.string(), expiresAt: z.string() })),
      403: problemResponse('a credential bound to one org (ACCOUNT_SESSION_REQUIRED)'),
      404: problemResponse('not a member of that org'),
    },
  }),
  deleteToken: createRoute({
    method: 'delete',
    path: '/auth/tokens/{id}',
    tags: ['auth'],
    summary: 'Revoke a personal API token',
    description: ACCOUNT_ONLY,
    security: bearerSecurity,
    request: { params: z.object({ id: Uuid }) },
    responses: {
      200: json('revoked', z.object({ id: Uuid })),
      403: problemResponse('a credential bound to one org (ACCOUNT_SESSION_REQUIRED)'),
      404: problemResponse('no such token'),
    },
  }),
  agentLogin: createRoute({
    method: 'post',
    path: '/auth/agent-login',
    tags: ['auth'],
    summary: 'An agent signs in with an HMAC credential and gets a short-lived token (JWT) for its org',
    description:
      'Differs from the first contract (`{agentId, secret}`): the secret never travels. Send `{agentId, timestamp, signature}` where timestamp is Unix seconds (within 5 minutes of the server clock) and signature = base64url(HMAC-SHA256(secret, agentId + "." + timestamp)). Each credential is accepted once. The token (ES256, with kid) lasts 15 minutes; use it as `Authorization: Bearer` on /api.',
    request: jsonBody(
      z.object({
        agentId: Uuid,
        timestamp: z.union([
          z.number().int().nonnegative(),
          z
            .string()
            .regex(/^\d{1,12}$/)
            .transform(Number),
        ]),
        signature: z.string().regex(/^[A-Za-z0-9_-]{43}$/),
      }),
    ),
    responses: {
      200: json('the agent token', z.object({ token: z.string(), expiresAt: z.string() })),
      401: problemResponse('invalid, stale or replayed credential'),
    },
  }),
  logout: createRoute({
    method: 'post',
    path: '/auth/logout',
    tags: ['auth'],
    summary: 'End the session the request carries (and the org sessions opened from it)',
    security: bearerSecurity,
    responses: { 200: json('ended', z.object({ loggedOut: z.boolean() })) },
  }),
}

export function authCommands(deps: AuthDeps) {
  const app = router()
  const pd = pipelineDeps(deps)
  const { identity } = deps
  /** State, nonce and PKCE verifier wait for the callback in a signed cookie under /auth/callback. */
  const loginCookie = { publicUrl: identity.publicUrl, path: '/auth/callback', secret: identity.keys.cookieSecret }
  const ctxOf = (c: Context<AppEnv>, caller: Caller) => commandContext(c, accountActor(caller), caller.credential.tenantId)

  app.openapi(routes.login, async (c) => {
    const returnTo = safeReturnTo(c.req.valid('query').returnTo)
    let request: Awaited<ReturnType<typeof identity.oidc.authorizationRequest>>
    try {
      request = await identity.oidc.authorizationRequest()
    } catch (e) {
      if (e instanceof OidcDiscoveryError) {
        throw new HttpProblem({ status: 503, code: 'IDP_UNAVAILABLE', title: 'Service unavailable', detail: e.message })
      }
      throw e
    }
    const { state, nonce, codeVerifier } = request
    await setExpiringSignedCookie(c, LOGIN_COOKIE, { state, nonce, codeVerifier, returnTo }, LOGIN_TTL_MS, loginCookie)
    c.header('cache-control', 'no-store')
    return c.redirect(request.url, 302)
  })

  app.openapi(routes.callback, async (c) => {
    type Pending = { state: string; nonce: string; codeVerifier: string; returnTo: string }
    const pending = await expiringSignedCookie<Pending>(c, LOGIN_COOKIE, loginCookie.secret)
    // The login cookie is spent whatever the outcome (also on the error answers, which are new responses).
    const spent = spendCookie(c, LOGIN_COOKIE, loginCookie)
    const refuse = (status: 400 | 401 | 503, code: string, title: string, detail: string) =>
      new HttpProblem({ status, code, title, detail, headers: { 'set-cookie': spent } })
    if (!pending) {
      throw refuse(
        400,
        'LOGIN_EXPIRED',
        'No sign-in in progress',
        'no sign-in is in progress in this browser (or it expired): start again at /auth/login',
      )
    }
    let claims: IdTokenClaims
    let accessToken: string | undefined
    try {
      const result = await identity.oidc.handleCallback(new URL(c.req.url).searchParams, pending)
      claims = result.claims
      accessToken = result.tokens.access_token
    } catch (e) {
      if (e instanceof OidcDiscoveryError || e instanceof OidcJwksError) {
        throw refuse(503, 'IDP_UNAVAILABLE', 'Service unavailable', e.message)
      }
      if (e instanceof OidcError) {
        c.get('log').warn({ refusal: e.code }, 'sign-in refused')
        throw refuse(401, 'LOGIN_FAILED', 'Sign-in failed', `${e.code}: ${e.message}`)
      }
      throw e
    }
    const who = await emailOf(identity, claims, accessToken)
    if (!who) throw refuse(401, 'LOGIN_FAILED', 'Sign-in failed', 'the identity provider shared no email address')
    const ctx = commandContext(c, AUTH_ACTOR, null)
    const { accountId } = await signInAccount(pd, ctx, {
      issuer: claims.iss,
      subject: claims.sub,
      email: who.email,
      emailVerified: who.verified,
    })
    const session = await issueCredential(pd, ctx, {
      kind: 'session',
      accountId,
      tenantId: null,
      userId: null,
      ttlMs: SESSION_TTL_MS,
    })
    setSessionCookie(c, identity.publicUrl, session.token, session.expiresAt)
    c.header('cache-control', 'no-store')
    return c.redirect(pending.returnTo, 303)
  })

  /** The org (by id or slug) and the caller's user in it; 404 unless the account is an active member. */
  const membership = async (caller: Caller, ref: string) => {
    const orgId = await resolveOrg(deps, ref)
    const state = orgId ? await loadOrg(pd, orgId) : null
    const member = state ? membershipOf(state, caller.credential.accountId) : null
    if (!orgId || !state || state.status === 'none' || !member) throw notFound('no such org among yours')
    return { orgId, slug: state.slug, userId: member[0] }
  }

  app.openapi(routes.tenantSession, async (c) => {
    const caller = await requireAccountSession(c, deps)
    const { orgId, userId } = await membership(caller, c.req.valid('json').org)
    const r = await issueCredential(pd, ctxOf(c, caller), {
      kind: 'session',
      accountId: caller.credential.accountId,
      tenantId: orgId,
      userId,
      ttlMs: TENANT_SESSION_TTL_MS,
      parentId: caller.credential.credentialId,
    })
    c.header('cache-control', 'no-store')
    return c.json({ token: r.token, expiresAt: r.expiresAt, orgId, userId }, 200)
  })

  app.openapi(routes.handoff, async (c) => {
    const caller = await requireAccountSession(c, deps)
    const body = c.req.valid('json')
    const { orgId, slug, userId } = await membership(caller, body.org)
    const { ticket, expiresAt } = await issueHandoff(pd, ctxOf(c, caller), {
      accountId: caller.credential.accountId,
      orgId,
      userId,
      returnTo: safeReturnTo(body.returnTo),
      parentId: caller.credential.credentialId,
    })
    const site = new URL(identity.publicUrl)
    const host = `${slug}.${deps.config.BASE_DOMAIN}${site.port ? `:${site.port}` : ''}`
    c.header('cache-control', 'no-store')
    return c.json({ url: `${site.protocol}//${host}/auth/handoff?ticket=${encodeURIComponent(ticket)}`, expiresAt }, 200)
  })

  /** On an org host a ticket must be that org's; on any other host it is taken only outside production. */
  const onItsHost =
    (c: Context) =>
    async ({ orgId }: { orgId: string }) => {
      const hostOrg = hostSlug(c.req.header('host'), deps.config.BASE_DOMAIN) ? await orgOfRequest(c, deps) : null
      if (hostOrg ? hostOrg !== orgId : deps.config.NODE_ENV === 'production') throw notFound('this ticket is for another host')
    }

  app.openapi(routes.confirmHandoff, async (c) => {
    const { ticket } = c.req.valid('query')
    const pending = await previewHandoff(pd, commandContext(c, AUTH_ACTOR, null), ticket, onItsHost(c))
    const [acct, org] = await Promise.all([loadAccount(pd, pending.accountId), loadOrg(pd, pending.orgId)])
    const email = acct.exists ? acct.email : 'your account'
    const orgName = org.status === 'none' ? 'this org' : org.name
    c.header('cache-control', 'no-store')
    c.header('content-security-policy', "default-src 'none'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
    c.header('x-frame-options', 'DENY')
    c.header('x-content-type-options', 'nosniff')
    // The page's URL holds the ticket: it goes to no other site. Not no-referrer, which would blank the form's Origin.
    c.header('referrer-policy', 'same-origin')
    return c.html(html`<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>Continue into ${orgName}?</title></head>
<body>
<main>
<h1>Continue into ${orgName}?</h1>
<p>You are about to be signed in to <strong>${orgName}</strong> as <strong>${email}</strong>.</p>
<p>If you did not ask for this, close this page.</p>
<form method="post" action="${routes.redeemHandoff.path}">
<input type="hidden" name="ticket" value="${ticket}">
<button type="submit">Continue as ${email} into ${orgName}</button>
</form>
</main>
</body>
</html>
`)
  })

  // Before the body is read: a request from another site is refused whatever it carries.
  app.use(routes.redeemHandoff.path, async (c, next) => {
    if (c.req.method === 'POST') checkSameHost(c, identity.publicUrl)
    await next()
  })

  app.openapi(routes.redeemHandoff, async (c) => {
    const ctx = commandContext(c, AUTH_ACTOR, null)
    const ticket = await redeemHandoff(pd, ctx, c.req.valid('form').ticket, onItsHost(c))
    const session = await issueCredential(pd, ctx, {
      kind: 'session',
      accountId: ticket.accountId,
      tenantId: ticket.orgId,
      userId: ticket.userId,
      ttlMs: TENANT_SESSION_TTL_MS,
      parentId: ticket.parentId,
    })
    setSessionCookie(c, identity.publicUrl, session.token, session.expiresAt)
    c.header('cache-control', 'no-store')
    return c.redirect(ticket.returnTo, 303)
  })

  app.openapi(routes.createToken, async (c) => {
    const caller = await requireAccountSession(c, deps)
    const { org, name, expiresInDays } = c.req.valid('json')
    const { orgId, userId } = await membership(caller, org)
    const r = await issueCredential(pd, ctxOf(c, caller), {
      kind: 'personal_token',
      accountId: caller.credential.accountId,
      tenantId: orgId,
      userId,
      name,
      ttlMs: expiresInDays * 24 * 3600_000,
    })
    c.header('cache-control', 'no-store')
    return c.json({ id: r.credentialId, token: r.token, expiresAt: r.expiresAt }, 201)
  })

  app.openapi(routes.deleteToken, async (c) => {
    const caller = await requireAccountSession(c, deps)
    const { id } = c.req.valid('param')
    await revokeCredential(pd, ctxOf(c, caller), { credentialId: id, accountId: caller.credential.accountId })
    return c.json({ id }, 200)
  })

  app.openapi(routes.agentLogin, async (c) => {
    const body = c.req.valid('json')
    const { agentId, tenantId } = await verifyAgentLogin(
      { ...pd, identity },
      { agentId: body.agentId, timestamp: body.timestamp, signature: body.signature },
      new Date(),
    )
    const issued = await identity.agentTokens.issue({ agentId, tenantId })
    c.header('cache-control', 'no-store')
    return c.json({ token: issued.token, expiresAt: issued.expiresAt.toISOString() }, 200)
  })

  app.openapi(routes.logout, async (c) => {
    const caller = await requireAccount(c, deps)
    const { credential } = caller
    const ctx = ctxOf(c, caller)
    await revokeCredential(pd, ctx, { credentialId: credential.credentialId, accountId: credential.accountId })
    // A session opened from a sign-in ends the sign-in too (its other org sessions hang from it).
    if (credential.kind === 'session' && credential.parentId) {
      await revokeCredential(pd, ctx, { credentialId: credential.parentId, accountId: credential.accountId })
    }
    if (caller.via === 'cookie') clearSessionCookie(c, identity.publicUrl)
    return c.json({ loggedOut: true }, 200)
  })
  return app
}
