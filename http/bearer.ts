import type { Context, MiddlewareHandler } from 'hono'
import { bearerAuth } from 'hono/bearer-auth'
import type { HttpProblem } from './problem.ts'

/*
 * The bearer credential of a request (`Authorization: Bearer <token>`): a session (`wss_…`), a personal API
 * token (`wsp_…`), an agent token (a JWT), or a service credential (SERVICE_TOKEN, OPERATOR_TOKEN).
 */

const BEARER = /^Bearer\s+(\S+)$/i
const JWT = /^ey[\w-]+\.ey[\w-]+\.[\w-]+$/

/** The request's bearer token, if it carries one (an absent or malformed header carries none). */
export const bearerToken = (c: Context): string | null => BEARER.exec(c.req.header('authorization') ?? '')?.[1] ?? null

/** Whether a bearer token is an agent token (a JWT) rather than one of our opaque tokens. */
export const isAgentToken = (token: string): boolean => JWT.test(token)

const raise = (problem: HttpProblem): never => {
  throw problem
}

/**
 * hono's bearer-auth middleware for a service credential, answering problem+json: `missing` when the request
 * carries no usable bearer token, `refused` when `verify` rejects it.
 */
export const requireBearer = (options: {
  verify: (token: string) => boolean
  missing: () => HttpProblem
  refused: () => HttpProblem
}): MiddlewareHandler =>
  bearerAuth({
    verifyToken: (token) => options.verify(token),
    // Thrown from the message: the problem+json error handler answers, as everywhere else.
    noAuthenticationHeader: { message: () => raise(options.missing()) },
    invalidAuthenticationHeader: { message: () => raise(options.missing()) },
    invalidToken: { message: () => raise(options.refused()) },
  })
