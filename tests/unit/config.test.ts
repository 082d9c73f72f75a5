import { describe, expect, it } from 'vitest'
import { ConfigError, isLoopbackHost, loadConfig } from '../../adapters/config.ts'

describe('configuration', () => {
  it('has defaults for an embedded start', () => {
    const c = loadConfig({})
    expect(c.PORT).toBe(3000)
    expect(c.DATABASE_URL).toBeUndefined()
    expect(c.ROLES).toEqual(['api', 'projector', 'realtime', 'processors', 'agents'])
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

describe('the dev IdP (anyone signs in as any email) and the X-Org stand-in', () => {
  const oidc = { OIDC_ISSUER: 'https://id.example.com', OIDC_CLIENT_ID: 'app', OIDC_CLIENT_SECRET: 'secret' }

  it('are on for a loopback PUBLIC_URL: the default, 127.0.0.0/8, ::1, localhost and *.localhost', () => {
    expect(loadConfig({}).DEV_IDP).toBe(true)
    for (const url of ['http://127.0.0.1:3000', 'http://127.8.9.10', 'http://[::1]:3000', 'http://acme.localhost:3000']) {
      expect(loadConfig({ PUBLIC_URL: url }).DEV_IDP, url).toBe(true)
    }
    expect(loadConfig({ BASE_DOMAIN: 'localhost', PORT: '8080' }).DEV_IDP).toBe(true)
  })

  it('are never mounted for another PUBLIC_URL: without OIDC_ISSUER the process refuses to start', () => {
    for (const url of ['https://app.example.com', 'http://10.0.0.5:3000', 'http://localhost.example.com', 'http://[::2]']) {
      expect(() => loadConfig({ PUBLIC_URL: url }), url).toThrow(/OIDC_ISSUER: required.*the dev IdP.*is off/s)
    }
    expect(() => loadConfig({ BASE_DOMAIN: 'example.com' })).toThrow(/OIDC_ISSUER/)
    expect(loadConfig({ PUBLIC_URL: 'https://app.example.com', ...oidc }).DEV_IDP).toBe(false)
  })

  it('DEV_IDP=1 turns them on anywhere but production, DEV_IDP=0 off anywhere', () => {
    expect(loadConfig({ PUBLIC_URL: 'http://devbox.lan:3000', DEV_IDP: '1' }).DEV_IDP).toBe(true)
    expect(loadConfig({ DEV_IDP: '0', ...oidc }).DEV_IDP).toBe(false)
    expect(() => loadConfig({ DEV_IDP: '0' })).toThrow(/OIDC_ISSUER.*DEV_IDP=0/s)
    expect(() => loadConfig({ DEV_IDP: 'yes' })).toThrow(/DEV_IDP/)
  })

  it('are off with NODE_ENV=production, which then needs OIDC_ISSUER even on loopback', () => {
    expect(() => loadConfig({ NODE_ENV: 'production' })).toThrow(/OIDC_ISSUER.*NODE_ENV=production/s)
    expect(() => loadConfig({ NODE_ENV: 'production', DEV_IDP: '1', ...oidc })).toThrow(/DEV_IDP/)
    expect(loadConfig({ NODE_ENV: 'production', ...oidc }).DEV_IDP).toBe(false)
  })
})

describe('a HOST other machines reach', () => {
  const production = {
    OIDC_ISSUER: 'https://id.example.com',
    OIDC_CLIENT_ID: 'app',
    OIDC_CLIENT_SECRET: 'secret',
    AUTH_SECRET_KEY: 'a'.repeat(64),
    PUBLIC_URL: 'https://app.example.com',
  }

  it('needs OIDC_ISSUER, AUTH_SECRET_KEY and an https PUBLIC_URL, each named when missing', () => {
    for (const HOST of ['0.0.0.0', '::', '10.1.2.3', 'app.internal']) {
      let message = ''
      try {
        loadConfig({ HOST })
      } catch (e) {
        expect(e).toBeInstanceOf(ConfigError)
        message = (e as Error).message
      }
      expect(message, HOST).toMatch(new RegExp(`HOST: ${HOST.replace('.', '\\.')} is not a loopback address`))
      for (const name of ['OIDC_ISSUER', 'AUTH_SECRET_KEY', 'PUBLIC_URL']) expect(message, HOST).toContain(name)
    }
    expect(() => loadConfig({ HOST: '0.0.0.0', ...production, PUBLIC_URL: 'http://app.example.com' })).toThrow(
      /an https PUBLIC_URL \(now http:\/\/app\.example\.com\)/,
    )
    expect(() => loadConfig({ HOST: '0.0.0.0', ...production, AUTH_SECRET_KEY: '' })).toThrow(/AUTH_SECRET_KEY/)
    expect(loadConfig({ HOST: '0.0.0.0', ...production }).HOST).toBe('0.0.0.0')
    expect(loadConfig({ HOST: '0.0.0.0', NODE_ENV: 'production', ...production }).DEV_IDP).toBe(false)
  })

  it('is a development machine’s choice with NODE_ENV=development or test', () => {
    expect(loadConfig({ HOST: '0.0.0.0', NODE_ENV: 'development' }).DEV_IDP).toBe(true)
    expect(loadConfig({ HOST: '0.0.0.0', NODE_ENV: 'test' }).HOST).toBe('0.0.0.0')
  })

  it('loopback means 127.0.0.0/8, ::1, localhost and *.localhost', () => {
    for (const h of [
      '127.0.0.1',
      '127.255.0.9',
      '::1',
      '[::1]',
      '0:0:0:0:0:0:0:1',
      '::ffff:127.0.0.1',
      'localhost',
      'LOCALHOST',
      'a.b.localhost',
      'localhost.',
    ]) {
      expect(isLoopbackHost(h), h).toBe(true)
    }
    for (const h of [
      '0.0.0.0',
      '::',
      '128.0.0.1',
      '10.0.0.1',
      '::2',
      'localhost.example.com',
      'mylocalhost',
      '127.0.0.1.nip.io',
      '',
    ]) {
      expect(isLoopbackHost(h), h).toBe(false)
    }
  })
})
