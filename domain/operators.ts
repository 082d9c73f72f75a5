import { type Decider, DomainError, type DomainEvent } from './decider.ts'

/*
 * The platform's operators: global accounts granted the operator role. One stream (`operators-platform`) holds
 * every grant and revocation, so that "only the first operator comes from the bootstrap token" and "the last
 * operator stays" are one stream's rules, decided on what it says, never on a read model. Operators are few.
 */

/** Who granted or revoked: an operator's account, or the shared bootstrap token (the first grant only). */
export type OperatorGrantor = { readonly type: 'operator'; readonly accountId: string } | { readonly type: 'bootstrap' }

export type OperatorEvent =
  | DomainEvent<'operator.granted', { accountId: string; by: OperatorGrantor; at: string }>
  | DomainEvent<'operator.revoked', { accountId: string; by: string; at: string }>

export type OperatorsState = {
  /** Account ids holding the role now. */
  readonly operators: ReadonlySet<string>
}

export type OperatorCommand =
  /** The shared token's one use: the first operator. `accountExists` is what the account's stream says. */
  | { type: 'bootstrap'; accountId: string; accountExists: boolean; at: string }
  | { type: 'grant'; accountId: string; accountExists: boolean; by: string; at: string }
  | { type: 'revoke'; accountId: string; by: string; at: string }

const requireOperator = (s: OperatorsState, accountId: string) => {
  if (!s.operators.has(accountId))
    throw new DomainError('NOT_AN_OPERATOR', 'only operators grant or revoke operators', 'forbidden')
}

const requireAccount = (exists: boolean) => {
  if (!exists) throw new DomainError('ACCOUNT_NOT_FOUND', 'no such account: the person signs in once first', 'not_found')
}

export const operators: Decider<OperatorCommand, OperatorEvent, OperatorsState> = {
  initialState: { operators: new Set() },
  decide(command, state) {
    switch (command.type) {
      case 'bootstrap':
        if (state.operators.size > 0) {
          throw new DomainError(
            'BOOTSTRAP_CLOSED',
            'operators exist: the shared token granted the first one and grants nothing more; an operator grants others',
            'forbidden',
          )
        }
        requireAccount(command.accountExists)
        return [{ type: 'operator.granted', data: { accountId: command.accountId, by: { type: 'bootstrap' }, at: command.at } }]
      case 'grant':
        requireOperator(state, command.by)
        requireAccount(command.accountExists)
        if (state.operators.has(command.accountId)) return []
        return [
          {
            type: 'operator.granted',
            data: { accountId: command.accountId, by: { type: 'operator', accountId: command.by }, at: command.at },
          },
        ]
      case 'revoke':
        requireOperator(state, command.by)
        if (!state.operators.has(command.accountId)) throw new DomainError('OPERATOR_NOT_FOUND', 'no such operator', 'not_found')
        if (state.operators.size === 1) throw new DomainError('LAST_OPERATOR', 'the platform keeps at least one operator')
        return [{ type: 'operator.revoked', data: { accountId: command.accountId, by: command.by, at: command.at } }]
    }
  },
  evolve(state, event) {
    const next = new Set(state.operators)
    if (event.type === 'operator.granted') next.add(event.data.accountId)
    else next.delete(event.data.accountId)
    return { operators: next }
  },
}
