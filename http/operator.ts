import type { Context, MiddlewareHandler } from 'hono'
import { constantTimeEqual } from '../adapters/constant-time.ts'
import { forbidden, unauthorized } from './problem.ts'

const bearer = (header: string | undefined): string | null => {
  const m = /^Bearer\s+(\S+)$/i.exec(header ?? '')
  return m ? m[1]! : null
}

export const isOperator = (c: Context, operatorToken: string | undefined): boolean => {
  const token = bearer(c.req.header('authorization'))
  return Boolean(token && operatorToken && constantTimeEqual(token, operatorToken))
}

/** Operators authenticate with the OPERATOR_TOKEN service credential. Without one configured, nobody does. */
export const requireOperator =
  (operatorToken: string | undefined): MiddlewareHandler =>
  async (c, next) => {
    const token = bearer(c.req.header('authorization'))
    if (!token) throw unauthorized()
    if (!operatorToken || !constantTimeEqual(token, operatorToken)) throw forbidden('operators only')
    await next()
  }

export const operatorActor = { type: 'operator', id: 'operator' } as const
