import type { MiddlewareHandler } from 'hono'
import { constantTimeEqual } from '../adapters/constant-time.ts'
import { requireBearer } from './bearer.ts'
import type { AppDeps, AppEnv } from './context.ts'
import { unauthorized } from './problem.ts'

/** /api/internal/*: services only, with `Authorization: Bearer <SERVICE_TOKEN>`. */
export const serviceAuth = (deps: AppDeps): MiddlewareHandler<AppEnv> => {
  const refused = () => unauthorized('service credentials required')
  return requireBearer({
    verify: (token) => {
      const expected = deps.config.SERVICE_TOKEN
      return expected ? constantTimeEqual(token, expected) : false
    },
    missing: refused,
    refused,
  })
}
