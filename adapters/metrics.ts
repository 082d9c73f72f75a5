import { Counter, collectDefaultMetrics, Gauge, Histogram, prometheusContentType, Registry } from 'prom-client'

/**
 * Metrics by prom-client, in the Prometheus text exposition format (version 0.0.4): a registry per app
 * (counters, histograms, gauges read at scrape time by their `collect()`), the process's default metrics
 * (CPU, memory, heap, event loop lag, GC, handles: `collectDefaultMetrics`, registered once per process) and
 * the command-to-projection latency the projection engine observes.
 */

export type Labels = Readonly<Record<string, string>>

export type Sample = { readonly labels: Labels; readonly value: number }

/** Latency buckets in seconds, from 2.5 ms to 10 s. */
export const LATENCY_BUCKETS = [0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10] as const

/** Command-to-projection buckets in seconds, from 5 ms to 5 min (a projector catching up after a stop). */
export const PROJECTION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300] as const

export const PROMETHEUS_CONTENT_TYPE: string = prometheusContentType

/**
 * Time from a command appending its events to each projector of this process applying them. Module-wide,
 * like the engine that observes it; every app registry exposes it.
 */
export const commandToProjectionSeconds = new Histogram({
  name: 'workspace_command_to_projection_seconds',
  help: 'Time from a command appending its events (their occurredAt) to each projector of this process applying them.',
  labelNames: ['projector'],
  buckets: [...PROJECTION_BUCKETS],
  registers: [],
})

/**
 * Observes a batch a projector applied: once per command (the events of one append share their occurredAt,
 * and stand together), from its occurredAt to now.
 */
export function observeProjected(
  projector: string,
  batch: readonly { readonly metadata: { readonly occurredAt: string } }[],
  now: number = Date.now(),
): void {
  let last: string | undefined
  for (const { metadata } of batch) {
    if (metadata.occurredAt === last) continue
    last = metadata.occurredAt
    const at = Date.parse(last)
    // Another process's clock may run ahead of ours: never a negative latency.
    if (Number.isFinite(at)) commandToProjectionSeconds.observe({ projector }, Math.max(0, now - at) / 1000)
  }
}

let defaults: Registry | null = null
/** The default metrics, once per process: each collectDefaultMetrics call starts monitors of its own. */
const processRegistry = (): Registry => {
  if (!defaults) {
    defaults = new Registry()
    collectDefaultMetrics({ register: defaults })
  }
  return defaults
}

export class MetricsRegistry {
  /** This app's metrics. */
  readonly registry = new Registry()
  /** Gauges whose last read failed. */
  private readonly failing = new Set<string>()
  /** What is exposed after the app's metrics: the default metrics and the count of failed reads. */
  private readonly trailer: Registry

  constructor() {
    const status = new Registry()
    const failing = this.failing
    new Gauge({
      name: 'workspace_metrics_collect_failures',
      help: 'Gauges that could not be read in this scrape.',
      registers: [status],
      collect() {
        this.set(failing.size)
      },
    })
    this.trailer = Registry.merge([status, processRegistry()])
  }

  counter(name: string, help: string, labelNames: readonly string[] = []): Counter {
    return new Counter({ name, help, labelNames, registers: [this.registry] })
  }

  histogram(
    name: string,
    help: string,
    labelNames: readonly string[] = [],
    buckets: readonly number[] = LATENCY_BUCKETS,
  ): Histogram {
    return new Histogram({ name, help, labelNames, buckets: [...buckets], registers: [this.registry] })
  }

  /**
   * A gauge read when scraped (projection lag, polls held, pool waiters). A read that fails leaves the gauge's
   * samples out of the scrape and is counted in workspace_metrics_collect_failures, never failing the scrape.
   */
  gauge(name: string, help: string, labelNames: readonly string[], read: () => Sample[] | Promise<Sample[]>): Gauge {
    const failing = this.failing
    return new Gauge({
      name,
      help,
      labelNames,
      registers: [this.registry],
      async collect() {
        try {
          const samples = await read()
          this.reset()
          for (const s of samples) this.set(s.labels, s.value)
          failing.delete(name)
        } catch {
          this.reset()
          // reset() leaves a gauge without labels at 0: drop that series too.
          if (labelNames.length === 0) this.remove({})
          failing.add(name)
        }
      },
    })
  }

  /** Adds a metric made elsewhere (commandToProjectionSeconds). */
  register(metric: Counter | Gauge | Histogram): void {
    this.registry.registerMetric(metric)
  }

  /** The exposition: this app's metrics (their gauges read first), then the failed reads and default metrics. */
  async render(): Promise<string> {
    const own = await this.registry.metrics()
    return `${own}\n${await this.trailer.metrics()}`
  }
}
