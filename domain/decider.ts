/** A pure decision model of one stream: what happened (E) follows from what is asked (C) and what is (S). */
export type Decider<C, E, S> = {
  readonly initialState: S
  decide(command: C, state: S): E[]
  evolve(state: S, event: E): S
}

/** A domain event as deciders see it: a type and its data; the envelope is added by the command layer. */
export type DomainEvent<T extends string = string, D = unknown> = { readonly type: T; readonly data: D }

export type DomainErrorCode = string

/**
 * A command refused by a domain rule. `kind` maps to the HTTP status: a rule (422), a conflict with
 * existing state (409), a missing thing (404) or a forbidden act (403).
 */
export class DomainError extends Error {
  override readonly name = 'DomainError'
  readonly code: DomainErrorCode
  readonly kind: 'rule' | 'conflict' | 'not_found' | 'forbidden'
  constructor(code: DomainErrorCode, message: string, kind: DomainError['kind'] = 'rule') {
    super(message)
    this.code = code
    this.kind = kind
  }
}

export const fold = <C, E, S>(decider: Decider<C, E, S>, events: readonly E[], from: S = decider.initialState): S =>
  events.reduce(decider.evolve, from)

/**
 * Folds stored events (`{ type, data }`, as an event store returns them) into a decider's state: the one place
 * stored events become domain events again. Commands, the HTTP shell and the tools all load streams through it.
 */
export const foldRecorded = <C, E, S>(
  decider: Decider<C, E, S>,
  events: readonly { readonly type: string; readonly data: unknown }[],
): S =>
  fold(
    decider,
    events.map((r) => ({ type: r.type, data: r.data }) as E),
  )
