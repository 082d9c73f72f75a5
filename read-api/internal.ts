import { createRoute, z } from '@hono/zod-openapi'
import type { AppDeps } from '../http/context.ts'
import { router } from '../http/router.ts'
import { json, problemResponse } from '../http/schemas.ts'
import { serviceAuth } from '../http/service-auth.ts'

const whoami = createRoute({
  method: 'get',
  path: '/api/internal/whoami',
  tags: ['internal'],
  summary: 'Checks service credentials (Authorization: Bearer SERVICE_TOKEN)',
  security: [{ service: [] }],
  responses: {
    200: json('the caller is a service', z.object({ caller: z.literal('service') })),
    401: problemResponse('no or wrong service credentials'),
  },
})

/** /api/internal/*: for the agents worker and other services, with service credentials only. */
export function internalQueries(deps: AppDeps) {
  const app = router()
  app.use('/api/internal/*', serviceAuth(deps))
  app.openapi(whoami, (c) => c.json({ caller: 'service' as const }, 200))
  return app
}
