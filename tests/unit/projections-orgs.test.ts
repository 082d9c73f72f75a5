import { describe, it } from 'vitest'
import type { OrgEvent } from '../../domain/orgs.ts'
import { type OrgRow, orgRows } from '../../projections/orgs.ts'
import { projectionSpec } from '../support/projection-spec.ts'

const t0 = '2026-11-28T10:00:00.000Z'
const t1 = '2026-11-28T11:00:00.000Z'
const t2 = '2026-11-28T12:00:00.000Z'
const orgId = 'org-1'

const created = (over: Partial<{ orgId: string; name: string; slug: string; at: string }> = {}) =>
  ({
    type: 'org.created',
    data: { orgId, name: 'Acme', slug: 'acme', createdBy: { type: 'operator', id: 'op' }, at: t0, ...over },
  }) satisfies OrgEvent
const suspended = (at = t1, id = orgId) =>
  ({ type: 'org.suspended', data: { orgId: id, reason: 'unpaid', at } }) satisfies OrgEvent
const reactivated = (at = t2, id = orgId) => ({ type: 'org.reactivated', data: { orgId: id, at } }) satisfies OrgEvent

const none = { seats: null, storage_bytes: null, llm_allowed_models: null, llm_key_source: null, llm_monthly_token_budget: null }
const acme: OrgRow = { id: orgId, name: 'Acme', slug: 'acme', status: 'active', created_at: t0, updated_at: t0, ...none }

describe('orgs read model', () => {
  const orgs = projectionSpec(orgRows)

  it('a created org is an active row', () => orgs.given([]).when(created()).then([acme]))

  it('a suspension marks it suspended, a reactivation active again, each at its time', () => {
    orgs
      .given([acme])
      .when(suspended())
      .then([{ ...acme, status: 'suspended', updated_at: t1 }])
    orgs
      .given([])
      .when(created(), suspended(), reactivated())
      .then([{ ...acme, status: 'active', updated_at: t2 }])
  })

  it('a repeated creation keeps the first row (and writes nothing)', () => {
    orgs
      .given([acme])
      .when(created({ name: 'Other', at: t1 }))
      .thenWrites({ upserts: [], deletes: [] })
  })

  it('a suspension of an org with no row changes nothing', () =>
    orgs.given([acme]).when(suspended(t1, 'org-2'), reactivated(t2, 'org-2')).then([acme]))

  it('a batch writes each touched row once, as it ends up', () =>
    orgs
      .given([acme])
      .when(created({ orgId: 'org-2', name: 'Beta', slug: 'beta', at: t1 }), suspended(t1), reactivated(t2))
      .thenWrites({
        upserts: [
          { id: 'org-2', name: 'Beta', slug: 'beta', status: 'active', created_at: t1, updated_at: t1, ...none },
          { ...acme, updated_at: t2 },
        ],
        deletes: [],
      }))

  it('limits and the LLM policy an operator sets are the row’s, each at its time; null lifts a limit', () => {
    const limits = (seats: number | null, storageBytes: number | null, at: string) =>
      ({ type: 'org.limits_set', data: { orgId, seats, storageBytes, at } }) satisfies OrgEvent
    orgs
      .given([acme])
      .when(limits(5, 1_000_000, t1))
      .then([{ ...acme, seats: 5, storage_bytes: 1_000_000, updated_at: t1 }])
    orgs
      .given([acme])
      .when(limits(5, 1_000_000, t1), limits(null, null, t2))
      .then([{ ...acme, updated_at: t2 }])
    orgs
      .given([acme])
      .when({
        type: 'org.llm_policy_set',
        data: { orgId, allowedModels: ['gpt-5', 'claude-sonnet'], keySource: 'org', monthlyTokenBudget: 2_000_000, at: t1 },
      })
      .then([
        {
          ...acme,
          llm_allowed_models: '["gpt-5","claude-sonnet"]',
          llm_key_source: 'org',
          llm_monthly_token_budget: 2_000_000,
          updated_at: t1,
        },
      ])
  })

  it('limits of an org with no row change nothing', () =>
    orgs
      .given([acme])
      .when({ type: 'org.limits_set', data: { orgId: 'org-2', seats: 1, storageBytes: null, at: t1 } })
      .then([acme]))
})
