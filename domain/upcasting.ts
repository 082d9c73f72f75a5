/**
 * Event schema evolution. An event type's data changes shape by adding a new schemaVersion and an
 * upcaster from the previous one; stored events are never rewritten. Readers always see the newest shape.
 */
export type Upcaster = (data: unknown) => unknown

export type UpcasterRegistry = ReadonlyMap<string, { readonly current: number; readonly steps: ReadonlyMap<number, Upcaster> }>

/** Steps keyed by the version they upgrade *from*: `{ 1: v1 => v2, 2: v2 => v3 }`. */
export const upcasters = (defs: Record<string, { current: number; steps: Record<number, Upcaster> }>): UpcasterRegistry =>
  new Map(
    Object.entries(defs).map(([type, d]) => [
      type,
      { current: d.current, steps: new Map(Object.entries(d.steps).map(([v, f]) => [Number(v), f])) },
    ]),
  )

export const currentVersion = (registry: UpcasterRegistry, type: string): number => registry.get(type)?.current ?? 1

export function upcast(
  registry: UpcasterRegistry,
  type: string,
  version: number,
  data: unknown,
): { data: unknown; schemaVersion: number } {
  const def = registry.get(type)
  if (!def) return { data, schemaVersion: version }
  let v = version
  let d = data
  while (v < def.current) {
    const step = def.steps.get(v)
    if (!step) throw new Error(`no upcaster for ${type} from schemaVersion ${v}`)
    d = step(d)
    v++
  }
  return { data: d, schemaVersion: v }
}
