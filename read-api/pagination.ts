import { z } from '@hono/zod-openapi'
import { badRequest } from '../http/problem.ts'

export const pageQuery = {
  limit: z.coerce.number().int().min(1).max(200).default(50).openapi({ description: 'page size, 1 to 200' }),
  cursor: z.string().max(512).optional().openapi({ description: 'nextCursor of the previous page' }),
}

export const encodeCursor = (key: readonly (string | number)[]): string => Buffer.from(JSON.stringify(key)).toString('base64url')

/** A cursor is opaque to clients; a tampered one is their error, not ours. */
export function decodeCursor(cursor: string | undefined, arity: number): (string | number)[] | null {
  if (cursor === undefined) return null
  try {
    const key = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'))
    if (Array.isArray(key) && key.length === arity && key.every((k) => typeof k === 'string' || typeof k === 'number')) return key
  } catch {}
  throw badRequest('cursor is not one this server gave out', [{ path: 'cursor', message: 'invalid cursor' }])
}

export const pageSchema = <T extends z.ZodType>(item: T) => z.object({ items: z.array(item), nextCursor: z.string().nullable() })
