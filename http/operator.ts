import type { Context, MiddlewareHandler } from 'hono'
import { constantTimeEqual } from '../adapters/constant-time.ts'
import { bearerToken, requireBearer } from './bearer.ts'
import { forbidden, unauthorized } from './problem.ts'

const isOperatorToken = (token: string, operatorToken: string | undefined): boolean =>
  operatorToken ? constantTimeEqual(token, operatorToken) : false

export const isOperator = (c: Context, operatorToken: string | undefined): boolean => {
  const token = bearerToken(c)
  return token ? isOperatorToken(token, operatorToken) : false
}

/** Operators authenticate with the OPERATOR_TOKEN service credential. Without one configured, nobody does. */
export const requireOperator = (operatorToken: string | undefined): MiddlewareHandler =>
  requireBearer({
    verify: (token) => isOperatorToken(token, operatorToken),
    missing: () => unauthorized(),
    refused: () => forbidden('operators only'),
  })

export const operatorActor = { type: 'operator', id: 'operator' } as const
