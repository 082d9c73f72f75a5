import { describe, expect, it } from 'vitest'
import { type Decider, DomainError, fold } from '../../domain/decider.ts'
import { currentVersion, upcast, upcasters } from '../../domain/upcasting.ts'

type Counted = { type: 'added'; data: { n: number } }
const counter: Decider<{ n: number }, Counted, number> = {
  initialState: 0,
  decide: (c) => [{ type: 'added', data: { n: c.n } }],
  evolve: (s, e) => s + e.data.n,
}
const added = (n: number): Counted => ({ type: 'added', data: { n } })

describe('deciders', () => {
  it('a stream folds from the initial state, or from a given state, in order', () => {
    expect(fold(counter, [])).toBe(0)
    expect(fold(counter, [added(2), added(3)])).toBe(5)
    expect(fold(counter, [added(2)], 40)).toBe(42)
  })

  it('a refusal is a DomainError with a code, a message and a kind, a broken rule unless said otherwise', () => {
    const e = new DomainError('SOME_RULE', 'because')
    expect(e).toBeInstanceOf(Error)
    expect({ name: e.name, code: e.code, message: e.message, kind: e.kind }).toEqual({
      name: 'DomainError',
      code: 'SOME_RULE',
      message: 'because',
      kind: 'rule',
    })
    expect(new DomainError('GONE', 'no such thing', 'not_found').kind).toBe('not_found')
  })
})

describe('event versions', () => {
  // Registries are built inside each test: a registry that fails to build fails that test, not the file's collection.
  it('a type without upcasters is at version 1; one with them at its current version', () => {
    const registry = upcasters({ 'thing.made': { current: 3, steps: { 1: (d) => d, 2: (d) => d } } })
    expect(currentVersion(registry, 'thing.made')).toBe(3)
    expect(currentVersion(registry, 'other')).toBe(1)
  })

  it('each step runs once, from the stored version up, and the result says the version reached', () => {
    const seen: number[] = []
    const tracing = upcasters({
      x: {
        current: 3,
        steps: {
          1: (d) => {
            seen.push(1)
            return { ...(d as object), one: true }
          },
          2: (d) => {
            seen.push(2)
            return { ...(d as object), two: true }
          },
        },
      },
    })
    expect(upcast(tracing, 'x', 1, {})).toEqual({ data: { one: true, two: true }, schemaVersion: 3 })
    expect(seen).toEqual([1, 2])
    expect(upcast(tracing, 'x', 3, { as: 'is' })).toEqual({ data: { as: 'is' }, schemaVersion: 3 })
  })

  it('a missing step names the type and the version it is missing from', () => {
    const broken = upcasters({ 'thing.made': { current: 2, steps: {} } })
    expect(() => upcast(broken, 'thing.made', 1, {})).toThrow('no upcaster for thing.made from schemaVersion 1')
  })
})
