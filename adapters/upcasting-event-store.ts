import { type UpcasterRegistry, upcast } from '../domain/upcasting.ts'
import type { EventStore, RecordedEvent, Subscription } from './event-store.ts'

const upcastEvent = (registry: UpcasterRegistry, e: RecordedEvent): RecordedEvent => {
  const { data, schemaVersion } = upcast(registry, e.type, e.metadata.schemaVersion ?? 1, e.data)
  return schemaVersion === e.metadata.schemaVersion ? e : { ...e, data, metadata: { ...e.metadata, schemaVersion } }
}

/** Every reader, whatever the adapter, sees each event in the newest shape of its type. */
export function withUpcasting(store: EventStore, registry: UpcasterRegistry): EventStore {
  if (registry.size === 0) return store
  const all = (events: RecordedEvent[]) => events.map((e) => upcastEvent(registry, e))
  return {
    append: (stream, events, options) => store.append(stream, events, options),
    readStream: async (stream, options) => all(await store.readStream(stream, options)),
    readAll: async (options) => all(await store.readAll(options)),
    readTenant: async (tenantId, options) => all(await store.readTenant(tenantId, options)),
    subscribeAll(options): Subscription {
      const inner = store.subscribeAll(options)
      return {
        close: () => inner.close(),
        async *[Symbol.asyncIterator]() {
          for await (const batch of inner) yield batch.map((e) => upcastEvent(registry, e))
        },
      }
    },
    headPosition: () => store.headPosition(),
    resolvePosition: (p) => store.resolvePosition(p),
    close: () => store.close(),
  }
}
