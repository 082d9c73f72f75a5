import { describe, expect, it } from 'vitest'
import { retryDelayMs } from '../../adapters/backoff.ts'
import { DataKeyUnwrapError } from '../../adapters/data-keys.ts'
import { isTransient } from '../../adapters/transient.ts'

describe('retryDelayMs', () => {
  it('doubles with each failure in a row, between half and all of the step, up to the cap', () => {
    const low = () => 0
    const high = () => 1
    expect([1, 2, 3, 4].map((n) => [retryDelayMs(n, 100, 10_000, low), retryDelayMs(n, 100, 10_000, high)])).toEqual([
      [50, 100],
      [100, 200],
      [200, 400],
      [400, 800],
    ])
    expect(retryDelayMs(30, 100, 10_000, low)).toBe(5_000)
    expect(retryDelayMs(30, 100, 10_000, high)).toBe(10_000)
  })

  it('spreads retries of processes that failed together', () => {
    const waits = new Set(Array.from({ length: 20 }, () => retryDelayMs(3, 100, 10_000)))
    expect(waits.size).toBeGreaterThan(1)
    for (const w of waits) expect(w).toBeGreaterThanOrEqual(200)
  })
})

describe('isTransient', () => {
  it('blames backing services, not the work', () => {
    const coded = (code: string) => Object.assign(new Error('x'), { code })
    for (const e of [
      coded('08006'),
      coded('40001'),
      coded('40P01'),
      coded('55P03'),
      coded('57P01'),
      coded('ECONNRESET'),
      new Error('Connection terminated unexpectedly'),
      new Error('Reached the max retries per request limit (which is 1).'),
      new Error('LOADING Redis is loading the dataset in memory'),
      new Error('wrapped', { cause: coded('08001') }),
    ])
      expect(isTransient(e), String(e)).toBe(true)
    for (const e of [
      coded('23505'),
      coded('23502'),
      coded('22P02'),
      new TypeError("Cannot read properties of undefined (reading 'id')"),
    ])
      expect(isTransient(e), String(e)).toBe(false)
  })
})

describe('isTransient, for a process missing the shared secret', () => {
  it('a data key that does not open is waited out, never blamed on the event', () => {
    expect(isTransient(new DataKeyUnwrapError('the data key of u does not open'))).toBe(true)
    expect(isTransient(new Error('wrapped', { cause: new DataKeyUnwrapError('no') }))).toBe(true)
    expect(isTransient(new Error('the data key of u does not open'))).toBe(false)
  })
})
