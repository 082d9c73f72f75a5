import { describe, expect, it } from 'vitest'
import { upcast, upcasters } from '../../domain/upcasting.ts'

const registry = upcasters({
  'message.created': {
    current: 3,
    steps: {
      1: (d) => ({ ...(d as object), mentions: [] }),
      2: (d) => {
        const { body, ...rest } = d as { body: string }
        return { ...rest, text: body }
      },
    },
  },
})

describe('upcasting old event versions', () => {
  it('runs every step from the stored version to the current one', () => {
    expect(upcast(registry, 'message.created', 1, { body: 'hi' })).toEqual({
      data: { text: 'hi', mentions: [] },
      schemaVersion: 3,
    })
    expect(upcast(registry, 'message.created', 2, { body: 'hi', mentions: ['u'] })).toEqual({
      data: { text: 'hi', mentions: ['u'] },
      schemaVersion: 3,
    })
  })

  it('leaves current versions and unknown types alone', () => {
    const d = { text: 'hi', mentions: [] }
    expect(upcast(registry, 'message.created', 3, d).data).toBe(d)
    expect(upcast(registry, 'other', 1, d)).toEqual({ data: d, schemaVersion: 1 })
  })

  it('refuses a gap in the chain', () => {
    const broken = upcasters({ x: { current: 3, steps: { 1: (d) => d } } })
    expect(() => upcast(broken, 'x', 1, {})).toThrow(/from schemaVersion 2/)
  })
})
