import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { checkOrgName, org, orgName, slugify } from '../../domain/orgs.ts'
import { deciderSpec } from '../support/given-when-then.ts'

const orgId = '01935c7e-0000-7000-8000-000000000001'
const other = '01935c7e-0000-7000-8000-000000000002'
const at = '2026-11-28T10:00:00.000Z'
const createdBy = { type: 'user', id: 'acc-1' }

describe('org names', () => {
  it('slugs are lowercase ascii words joined by hyphens', () => {
    expect(slugify('  Acme Corp  ')).toBe('acme-corp')
    expect(slugify('Ünïcödé Straße')).toBe('unicode-strasse')
    expect(slugify('a--b__c')).toBe('a-b-c')
  })

  it('refuses invalid and reserved names with a reason', () => {
    expect(checkOrgName('ab')).toMatchObject({ ok: false, reason: 'invalid' })
    expect(checkOrgName('1password')).toMatchObject({ ok: false, reason: 'invalid' })
    expect(checkOrgName('Admin')).toMatchObject({ ok: false, reason: 'reserved' })
    expect(checkOrgName('x'.repeat(81))).toMatchObject({ ok: false, reason: 'invalid' })
    expect(checkOrgName('Acme')).toEqual({ ok: true, slug: 'acme' })
  })

  it('every accepted slug is a valid host label', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 100 }), (name) => {
        const v = checkOrgName(name)
        if (v.ok) expect(v.slug).toMatch(/^[a-z][a-z0-9-]{2,39}$/)
        if (v.ok) expect(v.slug.endsWith('-')).toBe(false)
      }),
    )
  })
})

describe('org name reservation', () => {
  const spec = deciderSpec(orgName)
  it('reserves a free name', () =>
    spec
      .given([])
      .when({ orgId, name: ' Acme ' })
      .then([{ type: 'org.name_reserved', data: { orgId, slug: 'acme', name: 'Acme' } }]))
  it('refuses a name another org holds', () =>
    spec
      .given([{ type: 'org.name_reserved', data: { orgId: other, slug: 'acme', name: 'Acme' } }])
      .when({ orgId, name: 'ACME' })
      .thenRefused('NAME_TAKEN'))
  it('is idempotent for the org that holds it', () =>
    spec
      .given([{ type: 'org.name_reserved', data: { orgId, slug: 'acme', name: 'Acme' } }])
      .when({ orgId, name: 'Acme' })
      .then([]))
  it('refuses reserved names', () => spec.given([]).when({ orgId, name: 'www' }).thenRefused('NAME_RESERVED'))
})

describe('org', () => {
  const spec = deciderSpec(org)
  const created = { type: 'org.created' as const, data: { orgId, name: 'Acme', slug: 'acme', createdBy, at } }
  it('is created once', () => {
    spec.given([]).when({ type: 'create', orgId, name: 'Acme', slug: 'acme', createdBy, at }).then([created])
    spec.given([created]).when({ type: 'create', orgId, name: 'Acme', slug: 'acme', createdBy, at }).thenRefused('ORG_EXISTS')
  })
  it('is suspended and reactivated, idempotently', () => {
    const suspended = { type: 'org.suspended' as const, data: { orgId, reason: 'abuse', at } }
    spec.given([created]).when({ type: 'suspend', orgId, reason: 'abuse', at }).then([suspended])
    spec.given([created, suspended]).when({ type: 'suspend', orgId, reason: 'abuse', at }).then([])
    spec
      .given([created, suspended])
      .when({ type: 'reactivate', orgId, at })
      .then([{ type: 'org.reactivated', data: { orgId, at } }])
    spec.given([]).when({ type: 'suspend', orgId, reason: 'x', at }).thenRefused('ORG_NOT_FOUND')
  })
})
