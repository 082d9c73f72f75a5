import { createHash, timingSafeEqual } from 'node:crypto'

/**
 * Constant-time comparison of two strings: both are hashed (SHA-256) first, so neither their contents nor their
 * lengths show in the time it takes. For secrets presented by a client: tokens, MACs, OAuth state and nonces.
 */
export function constantTimeEqual(a: string, b: string): boolean {
  const ha = createHash('sha256').update(a, 'utf8').digest()
  const hb = createHash('sha256').update(b, 'utf8').digest()
  return timingSafeEqual(ha, hb) && a.length === b.length
}
