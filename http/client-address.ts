import { isIP } from 'node:net'
import { getConnInfo } from '@hono/node-server/conninfo'
import type { Context } from 'hono'
import type { TrustProxy } from '../adapters/config.ts'

/**
 * The address a request came from, for the per-address rate limit and the logs. X-Forwarded-For and Forwarded
 * are anyone's to write: they count only with TRUST_PROXY, and then only the entry our own proxies appended,
 * `hops` from the right (each proxy appends the address it was reached from), never one the client sent.
 */
export function clientAddress(c: Context, trust: TrustProxy | null): string {
  const socket = getConnInfo(c).remote.address ?? 'unknown'
  if (!trust) return socket
  return clientAddressOf(socket, c.req.header(trust.header) ?? null, trust)
}

/** clientAddress from its inputs: the socket's peer and the trusted header's value. */
export function clientAddressOf(socket: string, header: string | null, trust: TrustProxy): string {
  const entries = header === null ? [] : trust.header === 'forwarded' ? forwardedFor(header) : header.split(',')
  // The peer is the nearest proxy; walking left, each entry is one proxy further, the last one trusted the client.
  const chain = [...entries.map(bareAddress), socket]
  const found = chain[Math.max(0, chain.length - 1 - trust.hops)]!
  // Where a trusted proxy wrote no address (`unknown`, an obfuscated name), the peer is all we know.
  return isIP(found) ? found : socket
}

/** The `for=` of each element of an RFC 7239 Forwarded header, in order. */
function forwardedFor(header: string): string[] {
  return header.split(',').map((element) => {
    const pair = element
      .split(';')
      .map((p) => p.trim())
      .find((p) => p.toLowerCase().startsWith('for='))
    return pair ? pair.slice(4).replace(/^"(.*)"$/, '$1') : ''
  })
}

/** `1.2.3.4`, `1.2.3.4:80`, `[::1]`, `[::1]:80` or `::1` → the address alone. */
function bareAddress(entry: string): string {
  const v = entry.trim()
  const bracketed = /^\[([^\]]+)\](?::\d+)?$/.exec(v)
  if (bracketed) return bracketed[1]!
  const v4WithPort = /^(\d{1,3}(?:\.\d{1,3}){3}):\d+$/.exec(v)
  return v4WithPort ? v4WithPort[1]! : v
}
