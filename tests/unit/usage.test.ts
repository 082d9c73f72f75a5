import { describe, expect, it } from 'vitest'
import { fold } from '../../domain/decider.ts'
import {
  type Attribution,
  type BudgetCommand,
  type BudgetEvent,
  budget,
  type CapsEvent,
  type CapsState,
  caps,
  costOf,
  LimitReachedError,
  type PriceTable,
  prices,
  usdToMicros,
} from '../../domain/usage.ts'
import { refusal, spec } from './spec.ts'

const at = '2026-12-02T10:00:00.000Z'
const later = '2026-12-02T10:30:00.000Z'
const expiresAt = '2026-12-02T10:15:00.000Z'
const orgId = 'org-1'
const none: Attribution = { agentId: null, roomId: null, taskId: null }

const table: PriceTable = {
  models: { 'gpt-x': { inputPerMTokMicros: 2_500_000, cachedInputPerMTokMicros: 1_250_000, outputPerMTokMicros: 10_000_000 } },
  vmMinuteMicros: { small: 1_000 },
  diskGbMonthMicros: 100_000,
  storageGbMonthMicros: 23_000,
}

const capState = (entries: Record<string, number>): CapsState => ({ caps: entries })

const reserve = (over: Partial<Extract<BudgetCommand, { type: 'reserve' }>> = {}): BudgetCommand => ({
  type: 'reserve',
  reservationId: 'r1',
  orgId,
  ...none,
  amountMicroUsd: 400_000,
  caps: capState({ 'org:org-1': 1_000_000 }),
  at,
  expiresAt,
  ...over,
})

const record = (over: Partial<Extract<BudgetCommand, { type: 'record' }>> = {}): Extract<BudgetCommand, { type: 'record' }> => ({
  type: 'record',
  recordId: 'rec1',
  reservationId: null,
  orgId,
  ...none,
  usage: { kind: 'llm', model: 'gpt-x', inputTokens: 1000, cachedInputTokens: 0, outputTokens: 100 },
  costMicroUsd: 300_000,
  billed: true,
  caps: capState({ 'org:org-1': 1_000_000 }),
  at,
  ...over,
})

const reserved = (id: string, amount: number, a = none, exp = expiresAt): BudgetEvent => ({
  type: 'usage.reserved',
  data: { reservationId: id, orgId, ...a, amountMicroUsd: amount, at, expiresAt: exp },
})

const recorded = (c: Extract<BudgetCommand, { type: 'record' }>): BudgetEvent => ({
  type: 'usage.recorded',
  data: {
    recordId: c.recordId,
    reservationId: c.reservationId,
    orgId,
    agentId: c.agentId,
    roomId: c.roomId,
    taskId: c.taskId,
    usage: c.usage,
    costMicroUsd: c.costMicroUsd ?? 0,
    billedMicroUsd: c.billed ? (c.costMicroUsd ?? 0) : 0,
    priced: c.costMicroUsd !== null,
    at: c.at,
  },
})

describe('prices', () => {
  const rules = spec(prices)
  it('operators set the table; the same table again changes nothing', () => {
    rules
      .given([])
      .when({ type: 'set', prices: table, at })
      .then([{ type: 'usage.prices_set', data: { prices: table, at } }])
    rules
      .given([{ type: 'usage.prices_set', data: { prices: table, at } }])
      .when({ type: 'set', prices: { ...table }, at: later })
      .then([])
  })
  it('prices are whole non-negative micro-USD', () => {
    rules
      .given([])
      .when({ type: 'set', prices: { ...table, diskGbMonthMicros: -1 }, at })
      .thenRefused('PRICE_INVALID')
    rules
      .given([])
      .when({ type: 'set', prices: { ...table, vmMinuteMicros: { small: 0.5 } }, at })
      .thenRefused('PRICE_INVALID')
  })
})

describe('what usage costs', () => {
  it('tokens by the million, input, cached input and output priced apart, rounded up to the micro-USD', () => {
    // 1,000 × 2.5 + 500 × 1.25 + 100 × 10 USD per million = 0.0025 + 0.000625 + 0.001 USD
    expect(costOf({ kind: 'llm', model: 'gpt-x', inputTokens: 1000, cachedInputTokens: 500, outputTokens: 100 }, table)).toBe(
      4_125,
    )
    expect(costOf({ kind: 'llm', model: 'gpt-x', inputTokens: 1, cachedInputTokens: 0, outputTokens: 0 }, table)).toBe(3)
  })
  it('large counts are exact (no float products)', () => {
    expect(
      costOf({ kind: 'llm', model: 'gpt-x', inputTokens: 999_999_999_999, cachedInputTokens: 0, outputTokens: 0 }, table),
    ).toBe(2_499_999_999_998)
  })
  it('VM minutes by size; disk and storage by GB-month (10⁹ bytes, 30 days)', () => {
    expect(costOf({ kind: 'vm', vmId: 'v', size: 'small', minutes: 60 }, table)).toBe(60_000)
    expect(costOf({ kind: 'vm_disk', vmId: 'v', bytes: 1_000_000_000, minutes: 43_200 }, table)).toBe(100_000)
    expect(costOf({ kind: 'storage', bytes: 2_000_000_000, minutes: 21_600 }, table)).toBe(23_000)
  })
  it('what the table does not price has no cost (null)', () => {
    expect(costOf({ kind: 'llm', model: 'other', inputTokens: 1, cachedInputTokens: 0, outputTokens: 1 }, table)).toBeNull()
    expect(costOf({ kind: 'vm', vmId: 'v', size: 'huge', minutes: 1 }, table)).toBeNull()
    expect(costOf({ kind: 'vm', vmId: 'v', size: 'small', minutes: 1 }, null)).toBeNull()
  })
  it('USD become micro-USD without float residue', () => {
    expect(usdToMicros(0.1 + 0.2)).toBe(300_000)
    expect(usdToMicros(2.5)).toBe(2_500_000)
  })
})

describe('caps', () => {
  const rules = spec(caps)
  const set = (scope: 'org' | 'agent' | 'room' | 'task', scopeId: string, limit: number | null, byOperator = false) =>
    ({ type: 'set', orgId, scope, scopeId, limitMicroUsd: limit, byOperator, usedMicroUsd: 5, at }) as const
  const capSet = (
    scope: 'org' | 'agent' | 'room' | 'task',
    scopeId: string,
    limit: number | null,
    previous: number | null,
  ): CapsEvent => ({
    type: 'usage.cap_set',
    data: {
      orgId,
      scope,
      scopeId,
      agentId: scope === 'agent' ? scopeId : null,
      roomId: scope === 'room' ? scopeId : null,
      taskId: scope === 'task' ? scopeId : null,
      limitMicroUsd: limit,
      previousMicroUsd: previous,
      usedMicroUsd: 5,
      month: '2026-12',
      at,
    },
  })
  const ceiling = capSet('org', orgId, 10_000_000, null)

  it("the org's ceiling is the operators'", () => {
    rules
      .given([])
      .when(set('org', orgId, 10_000_000, true))
      .then([ceiling])
    rules
      .given([])
      .when(set('org', orgId, 10_000_000))
      .thenRefused('FORBIDDEN', 'forbidden')
  })
  it('admins set agent, room and task caps inside it, naming the scope for realtime routing', () => {
    rules
      .given([ceiling])
      .when(set('room', 'room-1', 2_000_000))
      .then([capSet('room', 'room-1', 2_000_000, null)])
    rules
      .given([ceiling])
      .when(set('task', 'task-1', 10_000_000))
      .then([capSet('task', 'task-1', 10_000_000, null)])
    rules
      .given([ceiling])
      .when(set('agent', 'a-1', 10_000_001))
      .thenRefused('CAP_ABOVE_ORG_LIMIT')
    rules
      .given([])
      .when(set('agent', 'a-1', 99_000_000))
      .then([capSet('agent', 'a-1', 99_000_000, null)])
  })
  it('a cap is raised by an amount in one command, within the ceiling', () => {
    const room = capSet('room', 'room-1', 2_000_000, null)
    const raise = (by: number) =>
      ({
        type: 'raise',
        orgId,
        scope: 'room',
        scopeId: 'room-1',
        byMicroUsd: by,
        byOperator: false,
        usedMicroUsd: 5,
        at,
      }) as const
    rules
      .given([ceiling, room])
      .when(raise(1_000_000))
      .then([capSet('room', 'room-1', 3_000_000, 2_000_000)])
    rules.given([ceiling, room]).when(raise(9_000_000)).thenRefused('CAP_ABOVE_ORG_LIMIT')
    rules.given([ceiling]).when(raise(1)).thenRefused('CAP_NOT_SET')
    rules.given([ceiling, room]).when(raise(0)).thenRefused('AMOUNT_INVALID')
  })
  it('removing a cap, or setting the same, as events say', () => {
    const room = capSet('room', 'room-1', 2_000_000, null)
    rules
      .given([ceiling, room])
      .when(set('room', 'room-1', null))
      .then([capSet('room', 'room-1', null, 2_000_000)])
    rules
      .given([ceiling, room])
      .when(set('room', 'room-1', 2_000_000))
      .then([])
    expect(fold(caps, [ceiling, room, capSet('room', 'room-1', null, 2_000_000)]).caps).toEqual({ 'org:org-1': 10_000_000 })
  })
})

describe('budget', () => {
  const rules = spec(budget)

  it('a reservation that fits is held', () =>
    rules
      .given([])
      .when(reserve())
      .then([reserved('r1', 400_000)]))

  it('one that would pass a cap is refused, naming the cap, its limit and what is used', () => {
    const history = [reserved('r0', 400_000), recorded(record({ recordId: 'x', costMicroUsd: 300_000 }))]
    rules.given(history).when(reserve()).thenRefused('LIMIT_REACHED')
    const e = refusal(() => budget.decide(reserve(), fold(budget, history))) as LimitReachedError
    expect(e).toBeInstanceOf(LimitReachedError)
    expect({
      scope: e.scope,
      scopeId: e.scopeId,
      limit: e.limitMicroUsd,
      used: e.usedMicroUsd,
      requested: e.requestedMicroUsd,
    }).toEqual({
      scope: 'org',
      scopeId: orgId,
      limit: 1_000_000,
      used: 700_000,
      requested: 400_000,
    })
  })

  it('exactly filling a cap is allowed; one micro-USD more is not', () => {
    rules
      .given([reserved('r0', 600_000)])
      .when(reserve())
      .then([reserved('r1', 400_000)])
    rules
      .given([reserved('r0', 600_001)])
      .when(reserve())
      .thenRefused('LIMIT_REACHED')
  })

  it('agent, room and task caps bind their own spend only', () => {
    const a: Attribution = { agentId: 'a-1', roomId: 'room-1', taskId: null }
    const capped = capState({ 'room:room-1': 500_000 })
    rules
      .given([reserved('r0', 300_000, a)])
      .when(reserve({ ...a, caps: capped }))
      .thenRefused('LIMIT_REACHED')
    const e = refusal(() =>
      budget.decide(reserve({ ...a, caps: capped }), fold(budget, [reserved('r0', 300_000, a)])),
    ) as LimitReachedError
    expect([e.scope, e.scopeId]).toEqual(['room', 'room-1'])
    // Spend in another room does not count against this one.
    rules
      .given([reserved('r0', 300_000, { ...a, roomId: 'room-2' })])
      .when(reserve({ ...a, caps: capped }))
      .then([reserved('r1', 400_000, a)])
  })

  it('a reservation settled by its record counts what was used, not what was reserved', () => {
    const settle = record({ reservationId: 'r0', costMicroUsd: 100_000 })
    rules
      .given([reserved('r0', 900_000), recorded(settle)])
      .when(reserve({ amountMicroUsd: 900_000 }))
      .then([reserved('r1', 900_000)])
  })

  it('an expired reservation no longer holds budget', () => {
    rules
      .given([reserved('r0', 900_000)])
      .when(reserve({ at: later, expiresAt: '2026-12-02T10:45:00.000Z' }))
      .then([
        {
          type: 'usage.reserved',
          data: { ...reserved('r1', 400_000).data, at: later, expiresAt: '2026-12-02T10:45:00.000Z' },
        } as BudgetEvent,
      ])
  })

  it('a reservation told twice holds once', () =>
    rules
      .given([reserved('r1', 400_000)])
      .when(reserve())
      .then([]))

  it('usage is recorded even past a cap, and says so once', () => {
    const over = record({ costMicroUsd: 1_500_000 })
    const reached: BudgetEvent = {
      type: 'usage.limit_reached',
      data: {
        orgId,
        scope: 'org',
        scopeId: orgId,
        ...none,
        limitMicroUsd: 1_000_000,
        usedMicroUsd: 1_500_000,
        month: '2026-12',
        at,
      },
    }
    rules
      .given([])
      .when(over)
      .then([recorded(over), reached])
    const again = record({ recordId: 'rec2', costMicroUsd: 1 })
    rules
      .given([recorded(over), reached])
      .when(again)
      .then([recorded(again)])
    // Past the cap, reservations are refused.
    rules
      .given([recorded(over), reached])
      .when(reserve({ amountMicroUsd: 0 }))
      .thenRefused('LIMIT_REACHED')
  })

  it('a warning at 80 % of a cap, once; "reached" at 100 %; again after the cap changes', () => {
    const first = record({ costMicroUsd: 800_000 })
    const warning: BudgetEvent = {
      type: 'usage.limit_warning',
      data: {
        orgId,
        scope: 'org',
        scopeId: orgId,
        ...none,
        limitMicroUsd: 1_000_000,
        usedMicroUsd: 800_000,
        month: '2026-12',
        at,
      },
    }
    rules
      .given([])
      .when(first)
      .then([recorded(first), warning])
    const second = record({ recordId: 'rec2', costMicroUsd: 100_000 })
    rules
      .given([recorded(first), warning])
      .when(second)
      .then([recorded(second)])
    const raised = record({ recordId: 'rec2', costMicroUsd: 1, caps: capState({ 'org:org-1': 1_000_001 }) })
    rules
      .given([recorded(first), warning])
      .when(raised)
      .then([
        recorded(raised),
        {
          type: 'usage.limit_warning',
          data: { ...warning.data, limitMicroUsd: 1_000_001, usedMicroUsd: 800_001 },
        } as BudgetEvent,
      ])
  })

  it('an org on its own key is metered (its cost counts) but billed nothing; unpriced usage costs nothing', () => {
    const own = record({ billed: false, caps: capState({}) })
    rules
      .given([])
      .when(own)
      .then([recorded(own)])
    expect(recorded(own).data).toMatchObject({ costMicroUsd: 300_000, billedMicroUsd: 0 })
    const unpriced = record({ costMicroUsd: null, caps: capState({}) })
    rules
      .given([])
      .when(unpriced)
      .then([recorded(unpriced)])
    expect(recorded(unpriced).data).toMatchObject({ costMicroUsd: 0, priced: false })
  })
})
