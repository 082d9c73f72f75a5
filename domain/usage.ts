import { type Decider, DomainError, type DomainEvent } from './decider.ts'

/*
 * Usage metering, the price table and spend caps.
 *
 * Money is integer micro-USD (1 USD = 1,000,000) everywhere past the HTTP edge: sums of integers never drift the
 * way sums of floats do, and a micro-USD is far below any price's precision. Costs round up to the next micro-USD,
 * so metering never under-charges by rounding.
 *
 * Three kinds of stream:
 * - `prices-platform`: the operators' price table (no tenant).
 * - `spend_caps-<orgId>`: the org's caps, the org's ceiling (operators) and the agent, room and task caps (admins).
 *   It moves only when someone changes a cap.
 * - `budget-<orgId>-<yyyy-mm>`: what the org spent and reserved in one UTC month. Every spending decision appends
 *   here at the revision it read, so concurrent decisions serialise on it and none can overshoot a cap. A new
 *   stream each month keeps what a decision reads bounded by one month's activity (caps are monthly, so nothing
 *   older matters to a decision); the state it folds to is a few sums per scope and the reservations in flight.
 */

export const MICROS_PER_USD = 1_000_000
/** Decimal gigabytes and a 30-day month: what "per GB-month" means in the price table. */
export const BYTES_PER_GB = 1_000_000_000
export const MINUTES_PER_MONTH = 30 * 24 * 60
/** Warnings when what a scope spent reaches this share of its cap. */
export const WARNING_RATIO = 0.8
/** A reservation never settled (its caller died) stops holding budget after this. */
export const DEFAULT_RESERVATION_TTL_SECONDS = 15 * 60

export const usdToMicros = (usd: number): number => Math.round(usd * MICROS_PER_USD)
export const microsToUsd = (micros: number): number => micros / MICROS_PER_USD

export const pricesStream = 'prices-platform'
export const capsStream = (orgId: string) => `spend_caps-${orgId}`
/** The UTC month an instant falls in, `yyyy-mm`: the budget period. */
export const monthOf = (at: string): string => at.slice(0, 7)
export const budgetStream = (orgId: string, month: string) => `budget-${orgId}-${month}`

// ---------------------------------------------------------------------------------------------------------------
// Prices

export type ModelPrice = {
  readonly inputPerMTokMicros: number
  readonly cachedInputPerMTokMicros: number
  readonly outputPerMTokMicros: number
}

export type PriceTable = {
  /** Per million tokens, by model name. */
  readonly models: Readonly<Record<string, ModelPrice>>
  /** Per VM-minute, by VM size. */
  readonly vmMinuteMicros: Readonly<Record<string, number>>
  readonly diskGbMonthMicros: number
  readonly storageGbMonthMicros: number
}

export const emptyPrices: PriceTable = { models: {}, vmMinuteMicros: {}, diskGbMonthMicros: 0, storageGbMonthMicros: 0 }

export type PricesEvent = DomainEvent<'usage.prices_set', { prices: PriceTable; at: string }>
export type PricesState = { readonly prices: PriceTable | null }
export type PricesCommand = { type: 'set'; prices: PriceTable; at: string }

const isMicros = (n: number) => Number.isSafeInteger(n) && n >= 0

const checkPrices = (p: PriceTable): void => {
  const amounts = [
    ...Object.values(p.models).flatMap((m) => [m.inputPerMTokMicros, m.cachedInputPerMTokMicros, m.outputPerMTokMicros]),
    ...Object.values(p.vmMinuteMicros),
    p.diskGbMonthMicros,
    p.storageGbMonthMicros,
  ]
  if (!amounts.every(isMicros)) throw new DomainError('PRICE_INVALID', 'prices are whole, non-negative micro-USD amounts')
}

const samePrices = (a: PriceTable, b: PriceTable): boolean => JSON.stringify(sortKeys(a)) === JSON.stringify(sortKeys(b))
const sortKeys = (v: unknown): unknown =>
  v && typeof v === 'object' && !Array.isArray(v)
    ? Object.fromEntries(
        Object.keys(v)
          .sort()
          .map((k) => [k, sortKeys((v as Record<string, unknown>)[k])]),
      )
    : v

/** The operators' price table: replaced whole, so that what a PUT says is what holds. */
export const prices: Decider<PricesCommand, PricesEvent, PricesState> = {
  initialState: { prices: null },
  decide(c, s) {
    checkPrices(c.prices)
    if (s.prices && samePrices(s.prices, c.prices)) return []
    return [{ type: 'usage.prices_set', data: { prices: c.prices, at: c.at } }]
  },
  evolve(_s, e) {
    return { prices: e.data.prices }
  },
}

// ---------------------------------------------------------------------------------------------------------------
// What is metered, and what it costs

export type LlmUsage = {
  readonly kind: 'llm'
  readonly model: string
  readonly inputTokens: number
  readonly cachedInputTokens: number
  readonly outputTokens: number
}
export type VmUsage = { readonly kind: 'vm'; readonly vmId: string; readonly size: string; readonly minutes: number }
/** Bytes held for some minutes: GB-months are bytes × minutes over (10⁹ × 43,200). */
export type VmDiskUsage = { readonly kind: 'vm_disk'; readonly vmId: string; readonly bytes: number; readonly minutes: number }
export type StorageUsage = { readonly kind: 'storage'; readonly bytes: number; readonly minutes: number }
export type Usage = LlmUsage | VmUsage | VmDiskUsage | StorageUsage

/** ⌈a / b⌉ for non-negative bigints: products of tokens and prices pass 2⁵³, so they are computed exactly. */
const ceilDiv = (a: bigint, b: bigint): number => Number((a + b - 1n) / b)

/** What the usage costs at these prices, in micro-USD; null when the table has no price for it. */
export function costOf(usage: Usage, table: PriceTable | null): number | null {
  const t = table ?? emptyPrices
  switch (usage.kind) {
    case 'llm': {
      const p = t.models[usage.model]
      if (!p) return null
      const sum =
        BigInt(usage.inputTokens) * BigInt(p.inputPerMTokMicros) +
        BigInt(usage.cachedInputTokens) * BigInt(p.cachedInputPerMTokMicros) +
        BigInt(usage.outputTokens) * BigInt(p.outputPerMTokMicros)
      return ceilDiv(sum, 1_000_000n)
    }
    case 'vm': {
      const p = t.vmMinuteMicros[usage.size]
      return p === undefined ? null : usage.minutes * p
    }
    case 'vm_disk':
    case 'storage': {
      const p = usage.kind === 'vm_disk' ? t.diskGbMonthMicros : t.storageGbMonthMicros
      return ceilDiv(BigInt(usage.bytes) * BigInt(usage.minutes) * BigInt(p), BigInt(BYTES_PER_GB) * BigInt(MINUTES_PER_MONTH))
    }
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Scopes and caps

export type Scope = 'org' | 'agent' | 'room' | 'task'
export const SCOPES: readonly Scope[] = ['org', 'agent', 'room', 'task']
export const scopeKey = (scope: Scope, scopeId: string) => `${scope}:${scopeId}`

/** What a spend is attributed to besides the org. */
export type Attribution = { readonly agentId: string | null; readonly roomId: string | null; readonly taskId: string | null }

/** The scopes a spend counts against, org first (the order a refusal names the first exceeded cap in). */
export const scopesOf = (orgId: string, a: Attribution): { scope: Scope; scopeId: string }[] => [
  { scope: 'org', scopeId: orgId },
  ...(a.agentId ? [{ scope: 'agent' as const, scopeId: a.agentId }] : []),
  ...(a.roomId ? [{ scope: 'room' as const, scopeId: a.roomId }] : []),
  ...(a.taskId ? [{ scope: 'task' as const, scopeId: a.taskId }] : []),
]

/** The ids a realtime payload routes a scope's event by (room and task members hear of their own). */
const routing = (scope: Scope, scopeId: string) => ({
  agentId: scope === 'agent' ? scopeId : null,
  roomId: scope === 'room' ? scopeId : null,
  taskId: scope === 'task' ? scopeId : null,
})

export type CapSet = {
  orgId: string
  scope: Scope
  scopeId: string
  agentId: string | null
  roomId: string | null
  taskId: string | null
  /** null: the cap was removed. */
  limitMicroUsd: number | null
  previousMicroUsd: number | null
  /** What the scope spent this month when its cap changed. */
  usedMicroUsd: number
  month: string
  at: string
}

export type CapsEvent = DomainEvent<'usage.cap_set', CapSet>
/** Monthly caps by scopeKey, micro-USD. */
export type CapsState = { readonly caps: Readonly<Record<string, number>> }
export type CapsCommand =
  | {
      type: 'set'
      orgId: string
      scope: Scope
      scopeId: string
      limitMicroUsd: number | null
      /** The org's ceiling is the operators'; admins set the caps inside it. */
      byOperator: boolean
      usedMicroUsd: number
      at: string
    }
  | {
      type: 'raise'
      orgId: string
      scope: Scope
      scopeId: string
      byMicroUsd: number
      byOperator: boolean
      usedMicroUsd: number
      at: string
    }

export const capOf = (s: CapsState, scope: Scope, scopeId: string): number | null => s.caps[scopeKey(scope, scopeId)] ?? null

/** The caps of an org: who may set which, and none inside the org's ceiling above it. */
export const caps: Decider<CapsCommand, CapsEvent, CapsState> = {
  initialState: { caps: {} },
  decide(c, s) {
    if (c.scope === 'org' && !c.byOperator)
      throw new DomainError('FORBIDDEN', "the org's ceiling is set by operators", 'forbidden')
    if (c.scope === 'org' && c.scopeId !== c.orgId) throw new DomainError('SCOPE_INVALID', 'an org cap is the org’s own')
    const previous = capOf(s, c.scope, c.scopeId)
    let limit: number | null
    if (c.type === 'raise') {
      if (previous === null) throw new DomainError('CAP_NOT_SET', `no ${c.scope} cap to raise: set one first`)
      if (!isMicros(c.byMicroUsd) || c.byMicroUsd === 0) throw new DomainError('AMOUNT_INVALID', 'a raise is a positive amount')
      limit = previous + c.byMicroUsd
    } else {
      if (c.limitMicroUsd !== null && !isMicros(c.limitMicroUsd)) throw new DomainError('AMOUNT_INVALID', 'a cap is not negative')
      limit = c.limitMicroUsd
    }
    const ceiling = capOf(s, 'org', c.orgId)
    if (c.scope !== 'org' && limit !== null && ceiling !== null && limit > ceiling) {
      throw new DomainError(
        'CAP_ABOVE_ORG_LIMIT',
        `a ${c.scope} cap of ${microsToUsd(limit)} USD is above the org's monthly ceiling of ${microsToUsd(ceiling)} USD`,
      )
    }
    if (limit === previous) return []
    return [
      {
        type: 'usage.cap_set',
        data: {
          orgId: c.orgId,
          scope: c.scope,
          scopeId: c.scopeId,
          ...routing(c.scope, c.scopeId),
          limitMicroUsd: limit,
          previousMicroUsd: previous,
          usedMicroUsd: c.usedMicroUsd,
          month: monthOf(c.at),
          at: c.at,
        },
      },
    ]
  },
  evolve(s, e) {
    const key = scopeKey(e.data.scope, e.data.scopeId)
    const { [key]: _old, ...rest } = s.caps
    return { caps: e.data.limitMicroUsd === null ? rest : { ...rest, [key]: e.data.limitMicroUsd } }
  },
}

// ---------------------------------------------------------------------------------------------------------------
// The month's budget: reservations, records, alerts

export type Reserved = Attribution & {
  reservationId: string
  orgId: string
  amountMicroUsd: number
  expiresAt: string
  at: string
}

export type Recorded = Attribution & {
  recordId: string
  reservationId: string | null
  orgId: string
  usage: Usage
  /** What it costs at the operators' prices (metered); 0 and priced false when the table has no price for it. */
  costMicroUsd: number
  /** What the org is charged: nothing when it runs on its own LLM key. */
  billedMicroUsd: number
  priced: boolean
  /** When the usage happened: it counts in that month. */
  at: string
}

export type LimitAlert = {
  orgId: string
  scope: Scope
  scopeId: string
  agentId: string | null
  roomId: string | null
  taskId: string | null
  limitMicroUsd: number
  usedMicroUsd: number
  month: string
  at: string
}

export type BudgetEvent =
  | DomainEvent<'usage.reserved', Reserved>
  | DomainEvent<'usage.recorded', Recorded>
  | DomainEvent<'usage.limit_warning', LimitAlert>
  | DomainEvent<'usage.limit_reached', LimitAlert>

export type OpenReservation = { readonly scopes: readonly string[]; readonly amountMicroUsd: number; readonly expiresAt: string }

export type BudgetState = {
  /** Spent (recorded) this month by scopeKey. */
  readonly spent: Readonly<Record<string, number>>
  /** Reservations not settled yet; an expired one no longer counts and leaves at the next event after its expiry. */
  readonly open: Readonly<Record<string, OpenReservation>>
  /** The cap each scope's last warning and last "reached" were about: one alert per crossing of a given cap. */
  readonly warnedAt: Readonly<Record<string, number>>
  readonly reachedAt: Readonly<Record<string, number>>
}

/** A spend the caps do not leave room for: names the cap, its limit and what is used of it. */
export class LimitReachedError extends DomainError {
  readonly scope: Scope
  readonly scopeId: string
  readonly limitMicroUsd: number
  readonly usedMicroUsd: number
  readonly requestedMicroUsd: number
  constructor(scope: Scope, scopeId: string, limit: number, used: number, requested: number) {
    super(
      'LIMIT_REACHED',
      `the ${scope} cap of ${microsToUsd(limit)} USD leaves no room for ${microsToUsd(requested)} USD: ` +
        `${microsToUsd(used)} USD is spent or reserved this month`,
    )
    this.scope = scope
    this.scopeId = scopeId
    this.limitMicroUsd = limit
    this.usedMicroUsd = used
    this.requestedMicroUsd = requested
  }
}

export type BudgetCommand =
  | (Attribution & {
      type: 'reserve'
      reservationId: string
      orgId: string
      amountMicroUsd: number
      /** The org's caps as the decision read them. */
      caps: CapsState
      at: string
      expiresAt: string
    })
  | (Attribution & {
      type: 'record'
      recordId: string
      reservationId: string | null
      orgId: string
      usage: Usage
      costMicroUsd: number | null
      billed: boolean
      caps: CapsState
      at: string
    })

const reservedFor = (s: BudgetState, key: string, at: string): number => {
  let sum = 0
  for (const r of Object.values(s.open)) if (r.expiresAt > at && r.scopes.includes(key)) sum += r.amountMicroUsd
  return sum
}

/** Spent and reserved: what a new reservation must fit beside. */
export const usedOf = (s: BudgetState, scope: Scope, scopeId: string, at: string): number =>
  (s.spent[scopeKey(scope, scopeId)] ?? 0) + reservedFor(s, scopeKey(scope, scopeId), at)

/** The warnings and "reached" a record's spend crosses, once per crossing of a given cap. */
function alerts(s: BudgetState, c: Extract<BudgetCommand, { type: 'record' }>, at: string): BudgetEvent[] {
  const out: BudgetEvent[] = []
  for (const { scope, scopeId } of scopesOf(c.orgId, c)) {
    const limit = capOf(c.caps, scope, scopeId)
    if (limit === null) continue
    const key = scopeKey(scope, scopeId)
    const used = s.spent[key] ?? 0
    const data = {
      orgId: c.orgId,
      scope,
      scopeId,
      ...routing(scope, scopeId),
      limitMicroUsd: limit,
      usedMicroUsd: used,
      month: monthOf(c.at),
      at,
    }
    if (used >= limit && s.reachedAt[key] !== limit) out.push({ type: 'usage.limit_reached', data })
    else if (used >= limit * WARNING_RATIO && used < limit && s.warnedAt[key] !== limit)
      out.push({ type: 'usage.limit_warning', data })
  }
  return out
}

export const budget: Decider<BudgetCommand, BudgetEvent, BudgetState> = {
  initialState: { spent: {}, open: {}, warnedAt: {}, reachedAt: {} },
  decide(c, s) {
    if (c.type === 'reserve') {
      // A repeated reservation (the caller retried) holds once.
      if (s.open[c.reservationId]) return []
      if (!isMicros(c.amountMicroUsd)) throw new DomainError('AMOUNT_INVALID', 'a reservation is a non-negative amount')
      for (const { scope, scopeId } of scopesOf(c.orgId, c)) {
        const limit = capOf(c.caps, scope, scopeId)
        if (limit === null) continue
        const used = usedOf(s, scope, scopeId, c.at)
        if (used + c.amountMicroUsd > limit) throw new LimitReachedError(scope, scopeId, limit, used, c.amountMicroUsd)
      }
      const { type: _t, caps: _c, ...data } = c
      return [{ type: 'usage.reserved', data }]
    }
    // Usage that happened is never refused: it counts, and may take a scope past its cap (which then refuses
    // further reservations). Unpriced usage is metered at no cost until the operators price it.
    const cost = c.costMicroUsd ?? 0
    const recorded: BudgetEvent = {
      type: 'usage.recorded',
      data: {
        recordId: c.recordId,
        reservationId: c.reservationId,
        orgId: c.orgId,
        agentId: c.agentId,
        roomId: c.roomId,
        taskId: c.taskId,
        usage: c.usage,
        costMicroUsd: cost,
        billedMicroUsd: c.billed ? cost : 0,
        priced: c.costMicroUsd !== null,
        at: c.at,
      },
    }
    const after = budget.evolve(s, recorded)
    return [recorded, ...alerts(after, c, c.at)]
  },
  evolve(s, e) {
    switch (e.type) {
      case 'usage.reserved': {
        const d = e.data
        const scopes = scopesOf(d.orgId, d).map((x) => scopeKey(x.scope, x.scopeId))
        return {
          ...s,
          open: {
            ...withoutExpired(s.open, d.at),
            [d.reservationId]: { scopes, amountMicroUsd: d.amountMicroUsd, expiresAt: d.expiresAt },
          },
        }
      }
      case 'usage.recorded': {
        const d = e.data
        const spent = { ...s.spent }
        for (const x of scopesOf(d.orgId, d))
          spent[scopeKey(x.scope, x.scopeId)] = (spent[scopeKey(x.scope, x.scopeId)] ?? 0) + d.costMicroUsd
        const open = withoutExpired(s.open, d.at)
        if (d.reservationId !== null) delete open[d.reservationId]
        return { ...s, spent, open }
      }
      case 'usage.limit_warning':
        return { ...s, warnedAt: { ...s.warnedAt, [scopeKey(e.data.scope, e.data.scopeId)]: e.data.limitMicroUsd } }
      case 'usage.limit_reached': {
        const key = scopeKey(e.data.scope, e.data.scopeId)
        return {
          ...s,
          warnedAt: { ...s.warnedAt, [key]: e.data.limitMicroUsd },
          reachedAt: { ...s.reachedAt, [key]: e.data.limitMicroUsd },
        }
      }
    }
  },
}

/** A copy of the open reservations without those expired by `at`: the state stays as small as what is in flight. */
const withoutExpired = (open: Readonly<Record<string, OpenReservation>>, at: string): Record<string, OpenReservation> => {
  const out: Record<string, OpenReservation> = {}
  for (const [id, r] of Object.entries(open)) if (r.expiresAt > at) out[id] = r
  return out
}
