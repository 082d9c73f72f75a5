import { LRUCache } from 'lru-cache'
import type { RecordedEvent } from './event-store.ts'

/**
 * Streams as this process last read them, for decisions that append conditioned on their revision: a stale entry
 * costs a refused append and a fresh read, never a wrong decision. Bounded in streams and in events per stream.
 */
export class StreamCache {
  private readonly streams: LRUCache<string, readonly RecordedEvent[]>
  private readonly maxEvents: number

  constructor(options: { maxStreams?: number; maxEventsPerStream?: number } = {}) {
    this.streams = new LRUCache({ max: options.maxStreams ?? 10_000 })
    this.maxEvents = options.maxEventsPerStream ?? 1_000
  }

  get(stream: string): readonly RecordedEvent[] | undefined {
    return this.streams.get(stream)
  }

  set(stream: string, events: readonly RecordedEvent[]): void {
    if (events.length <= this.maxEvents) this.streams.set(stream, events)
  }

  /** The stream moved (or may have): the next decision reads it afresh. */
  delete(stream: string): void {
    this.streams.delete(stream)
  }
}
