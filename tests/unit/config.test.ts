import { describe, expect, it } from 'vitest'
import { ConfigError, loadConfig } from '../../adapters/config.ts'

describe('configuration', () => {
  it('has defaults for an embedded start', () => {
    const c = loadConfig({})
    expect(c.PORT).toBe(3000)
    expect(c.DATABASE_URL).toBeUndefined()
    expect(c.ROLES).toEqual(['api', 'projector', 'realtime', 'processors'])
    expect(c.EVENT_STORE).toBe('postgres')
  })

  it('names the variable of a bad value', () => {
    expect(() => loadConfig({ PORT: 'eighty' })).toThrow(/PORT/)
    expect(() => loadConfig({ DATABASE_URL: 'not a url' })).toThrow(/DATABASE_URL/)
    expect(() => loadConfig({ ROLES: 'api,cook' })).toThrow(/ROLES/)
    expect(() => loadConfig({ OPERATOR_TOKEN: 'short' })).toThrow(/OPERATOR_TOKEN/)
    expect(() => loadConfig({ EVENT_STORE: 'kurrentdb' })).toThrow(/EVENTSTORE_URL/)
    expect(() => loadConfig({ PORT: 'x' })).toThrow(ConfigError)
  })

  it('treats empty variables as unset', () => {
    expect(loadConfig({ DATABASE_URL: '', PORT: '' }).PORT).toBe(3000)
  })

  it('splits roles', () => {
    expect(loadConfig({ ROLES: 'api, projector' }).ROLES).toEqual(['api', 'projector'])
  })
})
