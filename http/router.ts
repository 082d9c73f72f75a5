import { OpenAPIHono } from '@hono/zod-openapi'
import type { AppEnv } from './context.ts'
import { zodFieldErrors } from './errors.ts'
import { renderProblem } from './problem.ts'

/** A router whose validation failures answer 400 problem+json with per-field errors. */
export const router = () =>
  new OpenAPIHono<AppEnv>({
    defaultHook: (result, c) => {
      if (!result.success) {
        return renderProblem(c, {
          status: 400,
          code: 'INVALID_INPUT',
          title: 'Invalid input',
          detail: 'the request is invalid',
          errors: zodFieldErrors(result.error),
        })
      }
    },
  })
