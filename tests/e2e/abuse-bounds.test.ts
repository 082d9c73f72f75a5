import { Writable } from 'node:stream'
import { afterEach, describe, expect, it } from 'vitest'
import { OPERATOR_TOKEN, startTestServer, type TestServer } from '../support/server.ts'

/*
 * The per-address rate limit (RATE_LIMIT_IP_PER_MINUTE) covers the dev IdP and /metrics, and counts by the
 * address X-Forwarded-For or Forwarded names only when TRUST_PROXY says a proxy of ours writes it.
 */

let server: TestServer | undefined
afterEach(async () => {
  await server?.close()
  server = undefined
})

type LogLine = { msg?: string; path?: string; address?: string }

async function start(env: Record<string, string>) {
  const lines: LogLine[] = []
  const logTo = new Writable({
    write(chunk, _enc, done) {
      for (const line of String(chunk).split('\n').filter(Boolean)) lines.push(JSON.parse(line))
      done()
    },
  })
  server = await startTestServer({ RATE_LIMIT_IP_PER_MINUTE: '3', ...env }, { logTo })
  return { server, lines }
}

const statuses = async (n: number, path: string, headers: (i: number) => Record<string, string> = () => ({})) => {
  const out: number[] = []
  for (let i = 0; i < n; i++) out.push((await server!.request('GET', path, { headers: headers(i) })).status)
  return out
}

describe('the per-address limit', () => {
  it('covers /metrics, while the probes stay exempt', async () => {
    await start({})
    const operator = () => ({ authorization: `Bearer ${OPERATOR_TOKEN}` })
    expect(await statuses(4, '/metrics', operator)).toEqual([200, 200, 200, 429])
    expect(await statuses(5, '/healthz')).toEqual([200, 200, 200, 200, 200])
    expect(await statuses(2, '/readyz')).toEqual([200, 200])
  })

  it('covers the dev IdP', async () => {
    await start({})
    expect(await statuses(4, '/dev-idp/.well-known/openid-configuration')).toEqual([200, 200, 200, 429])
  })
})

describe('client addresses', () => {
  it('without TRUST_PROXY, X-Forwarded-For and Forwarded change nothing: not the bucket, not the log', async () => {
    const { lines } = await start({})
    const spoofed = (i: number) => ({ 'x-forwarded-for': `198.51.100.${i}`, forwarded: `for=203.0.113.${i}` })
    expect(await statuses(4, '/openapi.json', spoofed)).toEqual([200, 200, 200, 429])
    const logged = lines.filter((l) => l.msg === 'request' && l.path === '/openapi.json').map((l) => l.address)
    expect(new Set(logged)).toEqual(new Set(['127.0.0.1']))
  })

  it('with TRUST_PROXY=1, each client behind our proxy has its own bucket, and what it writes itself is ignored', async () => {
    const { lines } = await start({ TRUST_PROXY: '1' })
    // The client forges a first entry every time; our proxy appends the address it saw: always the same.
    const forged = (i: number) => ({ 'x-forwarded-for': `10.9.9.${i}, 203.0.113.7` })
    expect(await statuses(4, '/openapi.json', forged)).toEqual([200, 200, 200, 429])
    expect(await statuses(1, '/openapi.json', () => ({ 'x-forwarded-for': '203.0.113.8' }))).toEqual([200])
    const logged = lines.filter((l) => l.msg === 'request' && l.path === '/openapi.json').map((l) => l.address)
    expect(logged).toEqual(['203.0.113.7', '203.0.113.7', '203.0.113.7', '203.0.113.7', '203.0.113.8'])
  })

  it('with TRUST_PROXY=forwarded:1, the Forwarded header is read, and X-Forwarded-For is not', async () => {
    const { lines } = await start({ TRUST_PROXY: 'forwarded:1' })
    const headers = (i: number) => ({ forwarded: 'for="[2001:db8::7]:4711";proto=https', 'x-forwarded-for': `10.9.9.${i}` })
    expect(await statuses(4, '/openapi.json', headers)).toEqual([200, 200, 200, 429])
    expect(lines.find((l) => l.msg === 'request' && l.path === '/openapi.json')?.address).toBe('2001:db8::7')
  })
})
