import { describe, expect, it } from 'vitest'
import { loadConfig } from '../../adapters/config.ts'
import { clientAddressOf } from '../../http/client-address.ts'

const xff = (hops: number) => ({ header: 'x-forwarded-for' as const, hops })
const forwarded = (hops: number) => ({ header: 'forwarded' as const, hops })

describe('TRUST_PROXY', () => {
  it('is off unless set: the socket peer is the client, whatever the headers say', () => {
    expect(loadConfig({}).TRUST_PROXY).toBeNull()
    expect(loadConfig({ TRUST_PROXY: 'off' }).TRUST_PROXY).toBeNull()
    expect(loadConfig({ TRUST_PROXY: '0' }).TRUST_PROXY).toBeNull()
  })

  it('names how many proxies of ours stand in front, and which header they append to', () => {
    expect(loadConfig({ TRUST_PROXY: '1' }).TRUST_PROXY).toEqual(xff(1))
    expect(loadConfig({ TRUST_PROXY: 'x-forwarded-for:2' }).TRUST_PROXY).toEqual(xff(2))
    expect(loadConfig({ TRUST_PROXY: 'forwarded:1' }).TRUST_PROXY).toEqual(forwarded(1))
    for (const bad of ['true', 'yes', '10', '-1', 'forwarded', 'x-real-ip:1', 'forwarded:0']) {
      expect(() => loadConfig({ TRUST_PROXY: bad }), bad).toThrow(/TRUST_PROXY/)
    }
  })
})

describe('the client address behind trusted proxies', () => {
  it('takes the entry the nearest proxy appended, never what the client wrote before it', () => {
    expect(clientAddressOf('10.0.0.2', '203.0.113.7', xff(1))).toBe('203.0.113.7')
    expect(clientAddressOf('10.0.0.2', '6.6.6.6, 203.0.113.7', xff(1))).toBe('203.0.113.7')
    expect(clientAddressOf('10.0.0.2', '6.6.6.6, 203.0.113.7, 10.0.0.1', xff(2))).toBe('203.0.113.7')
  })

  it('falls back to the socket peer when our proxy wrote nothing usable, and to the furthest entry when fewer than the hops', () => {
    expect(clientAddressOf('10.0.0.2', null, xff(1))).toBe('10.0.0.2')
    expect(clientAddressOf('10.0.0.2', 'unknown', xff(1))).toBe('10.0.0.2')
    expect(clientAddressOf('10.0.0.2', '203.0.113.7', xff(3))).toBe('203.0.113.7')
  })

  it('reads ports and brackets off, in X-Forwarded-For and in Forwarded', () => {
    expect(clientAddressOf('10.0.0.2', '203.0.113.7:5123', xff(1))).toBe('203.0.113.7')
    expect(clientAddressOf('10.0.0.2', '[2001:db8::1]:4711', xff(1))).toBe('2001:db8::1')
    expect(clientAddressOf('10.0.0.2', '2001:db8::1', xff(1))).toBe('2001:db8::1')
    expect(clientAddressOf('10.0.0.2', 'for=6.6.6.6, for=198.51.100.1;proto=https;by=10.0.0.2', forwarded(1))).toBe(
      '198.51.100.1',
    )
    expect(clientAddressOf('10.0.0.2', 'for="[2001:db8::9]:4711";proto=http', forwarded(1))).toBe('2001:db8::9')
    expect(clientAddressOf('10.0.0.2', 'proto=https;for=_hidden', forwarded(1))).toBe('10.0.0.2')
  })
})
