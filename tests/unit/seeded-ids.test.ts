import { describe, expect, it } from 'vitest'
import { seededIds } from '../../commands/command-context.ts'

describe('ids seeded by an idempotency key', () => {
  it('are UUIDv7s, the same sequence for the same seed and time, different for another seed', () => {
    const a = seededIds('actor:key', 1_764_000_000_000)
    const b = seededIds('actor:key', 1_764_000_000_000)
    const c = seededIds('actor:other', 1_764_000_000_000)
    const first = [a(), a(), a()]
    expect([b(), b(), b()]).toEqual(first)
    expect(c()).not.toEqual(first[0])
    for (const id of first) expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/)
    expect(new Set(first).size).toBe(3)
  })
})
