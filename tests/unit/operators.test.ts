import { describe, expect, it } from 'vitest'
import { fold } from '../../domain/decider.ts'
import { type OperatorCommand, type OperatorEvent, operators } from '../../domain/operators.ts'
import { spec } from './spec.ts'

const at = '2026-12-02T06:00:00.000Z'
const first = 'acc-first'
const second = 'acc-second'
const stranger = 'acc-stranger'

const bootstrap = (accountId = first, accountExists = true): OperatorCommand => ({
  type: 'bootstrap',
  accountId,
  accountExists,
  at,
})
const grant = (accountId: string, by: string, accountExists = true): OperatorCommand => ({
  type: 'grant',
  accountId,
  accountExists,
  by,
  at,
})
const revoke = (accountId: string, by: string): OperatorCommand => ({ type: 'revoke', accountId, by, at })
const bootstrapped: OperatorEvent = { type: 'operator.granted', data: { accountId: first, by: { type: 'bootstrap' }, at } }
const granted = (accountId: string, by: string): OperatorEvent => ({
  type: 'operator.granted',
  data: { accountId, by: { type: 'operator', accountId: by }, at },
})
const revoked = (accountId: string, by: string): OperatorEvent => ({ type: 'operator.revoked', data: { accountId, by, at } })

describe('operators: the bootstrap', () => {
  const rules = spec(operators)
  it('the shared token grants the first operator', () => rules.given([]).when(bootstrap()).then([bootstrapped]))
  it('once an operator exists it grants nothing, not even the same account again', () => {
    rules.given([bootstrapped]).when(bootstrap(second)).thenRefused('BOOTSTRAP_CLOSED', 'forbidden')
    rules.given([bootstrapped]).when(bootstrap(first)).thenRefused('BOOTSTRAP_CLOSED', 'forbidden')
    rules
      .given([bootstrapped, granted(second, first), revoked(first, second)])
      .when(bootstrap(first))
      .thenRefused('BOOTSTRAP_CLOSED', 'forbidden')
  })
  it('an account that never signed in is not found', () =>
    rules.given([]).when(bootstrap(first, false)).thenRefused('ACCOUNT_NOT_FOUND', 'not_found'))
})

describe('operators: grants and revocations', () => {
  const rules = spec(operators)
  it('an operator grants another account; granting a holder again changes nothing', () => {
    rules
      .given([bootstrapped])
      .when(grant(second, first))
      .then([granted(second, first)])
    rules
      .given([bootstrapped, granted(second, first)])
      .when(grant(second, first))
      .then([])
  })
  it('only operators grant or revoke', () => {
    rules.given([bootstrapped]).when(grant(second, stranger)).thenRefused('NOT_AN_OPERATOR', 'forbidden')
    rules.given([]).when(grant(second, first)).thenRefused('NOT_AN_OPERATOR', 'forbidden')
    rules
      .given([bootstrapped, granted(second, first), revoked(second, first)])
      .when(grant(stranger, second))
      .thenRefused('NOT_AN_OPERATOR', 'forbidden')
    rules
      .given([bootstrapped, granted(second, first)])
      .when(revoke(first, stranger))
      .thenRefused('NOT_AN_OPERATOR', 'forbidden')
  })
  it('the granted account must exist', () =>
    rules
      .given([bootstrapped])
      .when(grant(second, first, false))
      .thenRefused('ACCOUNT_NOT_FOUND', 'not_found'))
  it('an operator revokes another, or themself, but the last operator stays', () => {
    rules
      .given([bootstrapped, granted(second, first)])
      .when(revoke(second, first))
      .then([revoked(second, first)])
    rules
      .given([bootstrapped, granted(second, first)])
      .when(revoke(first, first))
      .then([revoked(first, first)])
    rules.given([bootstrapped]).when(revoke(first, first)).thenRefused('LAST_OPERATOR')
  })
  it('revoking an account that holds no role is not found', () =>
    rules.given([bootstrapped]).when(revoke(second, first)).thenRefused('OPERATOR_NOT_FOUND', 'not_found'))
  it('the state is who holds the role now', () => {
    expect(fold(operators, [bootstrapped, granted(second, first), revoked(first, second)]).operators).toEqual(new Set([second]))
    expect(operators.initialState.operators.size).toBe(0)
  })
})
