import { publicPosition, type Position as StorePosition } from '../adapters/event-store.ts'

/** The `position` field of a command's answer. */
export const positionOf = (p: StorePosition | null): number | null => (p ? publicPosition(p) : null)

export const bearerSecurity: Record<string, string[]>[] = [{ bearer: [] }, { cookie: [] }]
