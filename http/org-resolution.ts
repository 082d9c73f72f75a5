import { z } from '@hono/zod-openapi'
import type { Context } from 'hono'
import { orgNameStream } from '../adapters/streams.ts'
import type { AppDeps } from './context.ts'
import { notFound } from './problem.ts'

/*
 * Which org a request is for. For a browser (the cookie) the org is the request's host `<slug>.<BASE_DOMAIN>`;
 * outside production an `X-Org: <slug or id>` header or `?org=` stands in for it.
 */

/** Per event store (a test process may run several servers): slug → org id. */
const slugCaches = new WeakMap<object, Map<string, string>>()

/** An org named by id or by slug (the slug's reservation stream names it); null when neither names one. */
export async function resolveOrg(deps: AppDeps, ref: string): Promise<string | null> {
  if (z.uuid().safeParse(ref).success) return ref.toLowerCase()
  const slug = ref.toLowerCase()
  let slugCache = slugCaches.get(deps.store)
  if (!slugCache) {
    slugCache = new Map()
    slugCaches.set(deps.store, slugCache)
  }
  const cached = slugCache.get(slug)
  if (cached) return cached
  const reserved = await deps.store.readStream(orgNameStream(slug), { maxCount: 1 })
  const orgId = (reserved[0]?.data as { orgId?: string } | undefined)?.orgId ?? null
  // A slug names one org forever (the reservation is never released).
  if (orgId && slugCache.size < 10_000) slugCache.set(slug, orgId)
  return orgId
}

/** The slug of an org host `<slug>.<BASE_DOMAIN>`, or null for any other host. */
export function hostSlug(host: string | undefined, baseDomain: string): string | null {
  const name = (host ?? '').toLowerCase().replace(/:\d+$/, '')
  const base = baseDomain.toLowerCase()
  if (!name.endsWith(`.${base}`)) return null
  const slug = name.slice(0, -(base.length + 1))
  return /^[a-z0-9-]{1,63}$/.test(slug) ? slug : null
}

/**
 * The org a browser request is for: its host, or (outside production) the X-Org header or ?org=.
 * Null when the request names none; 404 when it names an org that does not exist.
 */
export async function orgOfRequest(c: Context, deps: AppDeps): Promise<string | null> {
  const slug = hostSlug(c.req.header('host'), deps.config.BASE_DOMAIN)
  let ref: string | null = slug
  if (!ref && deps.config.DEV_IDP) ref = c.req.header('x-org') ?? c.req.query('org') ?? null
  if (!ref) return null
  const orgId = await resolveOrg(deps, ref)
  if (!orgId) throw notFound('no such org')
  return orgId
}
