import { createCipheriv, createDecipheriv, createSecretKey, hkdfSync, type KeyObject, randomBytes } from 'node:crypto'
import { join } from 'node:path'
import { loadOrCreateJsonFile } from './json-file-store.ts'

/**
 * The server's own secret (AUTH_SECRET_KEY, or 32 random bytes kept in `<DATA_DIR>/auth/secret-key.json`)
 * and what is derived from it: a key that seals agent secrets at rest (AES-256-GCM), one that wraps the
 * per-user data keys personal data is encrypted under (adapters/data-keys.ts), and the key hono's signed cookies
 * are signed with (HMAC-SHA256, http/cookies.ts), and the key invite tokens are derived with (HMAC-SHA256 of the
 * invite id, commands/invites.ts), so the invite email recomputes its link from an event that never holds it.
 * Every process of a deployment must share it.
 */
export type AuthKeys = {
  readonly sealer: Sealer
  readonly dataKeyWrapper: Sealer
  readonly cookieSecret: Uint8Array
  readonly inviteTokenKey: Uint8Array
}

export function parseSecretKey(value: string): Buffer {
  const key = /^[0-9a-f]{64}$/i.test(value) ? Buffer.from(value, 'hex') : Buffer.from(value, 'base64')
  if (key.length !== 32) throw new Error('AUTH_SECRET_KEY must be 32 bytes, as 64 hex characters or base64')
  return key
}

export async function loadAuthKeys(options: { secretKey?: string; dataDir: string }): Promise<AuthKeys> {
  const root = options.secretKey
    ? parseSecretKey(options.secretKey)
    : Buffer.from(
        (
          await loadOrCreateJsonFile(
            join(options.dataDir, 'auth', 'secret-key.json'),
            (v) => {
              const key = (v as { key?: unknown } | null)?.key
              if (typeof key !== 'string') throw new Error('key: expected a string')
              parseSecretKey(key)
              return { key }
            },
            async () => ({ key: randomBytes(32).toString('hex') }),
          )
        ).key,
        'hex',
      )
  const derive = (purpose: string) => Buffer.from(hkdfSync('sha256', root, Buffer.alloc(0), purpose, 32))
  return {
    sealer: new Sealer(derive('agent-secret-seal/v1')),
    dataKeyWrapper: new Sealer(derive('data-key-wrap/v1')),
    cookieSecret: new Uint8Array(derive('cookie-sign/v1')),
    inviteTokenKey: new Uint8Array(derive('invite-token/v1')),
  }
}

/** Authenticated encryption of small secrets; the context (e.g. the agent id) is bound as associated data. */
export class Sealer {
  // A KeyObject, made once: given a Buffer, every cipher would make one of its own (most of a small seal's cost).
  readonly #key: KeyObject
  constructor(key: Buffer) {
    this.#key = createSecretKey(key)
  }

  seal(plaintext: string, context: string): string {
    const iv = randomBytes(12)
    const cipher = createCipheriv('aes-256-gcm', this.#key, iv)
    cipher.setAAD(Buffer.from(context, 'utf8'))
    const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final(), cipher.getAuthTag()])
    return `v1.${iv.toString('base64url')}.${body.toString('base64url')}`
  }

  /** The plaintext, or null when the value was sealed under another key or context, or tampered with. */
  open(sealed: string, context: string): string | null {
    const [version, iv, body] = sealed.split('.')
    if (version !== 'v1' || !iv || !body) return null
    try {
      const data = Buffer.from(body, 'base64url')
      const decipher = createDecipheriv('aes-256-gcm', this.#key, Buffer.from(iv, 'base64url'))
      decipher.setAAD(Buffer.from(context, 'utf8'))
      decipher.setAuthTag(data.subarray(data.length - 16))
      return Buffer.concat([decipher.update(data.subarray(0, data.length - 16)), decipher.final()]).toString('utf8')
    } catch {
      return null
    }
  }
}
