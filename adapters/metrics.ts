/**
 * Metrics in the Prometheus text exposition format (version 0.0.4), without a client library: counters and
 * histograms kept in memory, gauges read when scraped. Label values are escaped; metric and label names are
 * ours and fixed.
 */

export type Labels = Readonly<Record<string, string>>

type Sample = { readonly labels: Labels; readonly value: number }

const escapeLabel = (v: string) => v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"')

const labelText = (labels: Labels, extra?: [string, string]): string => {
  const pairs = Object.entries(labels)
  if (extra) pairs.push(extra)
  return pairs.length ? `{${pairs.map(([k, v]) => `${k}="${escapeLabel(v)}"`).join(',')}}` : ''
}

const num = (n: number) => (Number.isFinite(n) ? String(n) : n > 0 ? '+Inf' : n < 0 ? '-Inf' : 'NaN')

const keyOf = (labels: Labels) => JSON.stringify(Object.entries(labels).sort(([a], [b]) => (a < b ? -1 : 1)))

interface Metric {
  readonly name: string
  render(): Promise<string>
}

export class Counter implements Metric {
  readonly name: string
  private readonly help: string
  private readonly values = new Map<string, { labels: Labels; value: number }>()
  constructor(name: string, help: string) {
    this.name = name
    this.help = help
  }
  inc(labels: Labels = {}, by = 1): void {
    const k = keyOf(labels)
    const v = this.values.get(k)
    if (v) v.value += by
    else this.values.set(k, { labels, value: by })
  }
  async render(): Promise<string> {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} counter`]
    for (const { labels, value } of this.values.values()) lines.push(`${this.name}${labelText(labels)} ${num(value)}`)
    return lines.join('\n')
  }
}

/** Latency buckets in seconds, from 2.5 ms to 10 s. */
export const LATENCY_BUCKETS = [0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10] as const

export class Histogram implements Metric {
  readonly name: string
  private readonly help: string
  private readonly buckets: readonly number[]
  private readonly series = new Map<string, { labels: Labels; counts: number[]; sum: number; count: number }>()
  constructor(name: string, help: string, buckets: readonly number[] = LATENCY_BUCKETS) {
    this.name = name
    this.help = help
    this.buckets = [...buckets].sort((a, b) => a - b)
  }
  observe(labels: Labels, value: number): void {
    const k = keyOf(labels)
    let s = this.series.get(k)
    if (!s) {
      s = { labels, counts: this.buckets.map(() => 0), sum: 0, count: 0 }
      this.series.set(k, s)
    }
    for (let i = 0; i < this.buckets.length; i++) if (value <= this.buckets[i]!) s.counts[i]!++
    s.sum += value
    s.count++
  }
  async render(): Promise<string> {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} histogram`]
    for (const s of this.series.values()) {
      for (const [i, b] of this.buckets.entries())
        lines.push(`${this.name}_bucket${labelText(s.labels, ['le', num(b)])} ${s.counts[i]}`)
      lines.push(`${this.name}_bucket${labelText(s.labels, ['le', '+Inf'])} ${s.count}`)
      lines.push(`${this.name}_sum${labelText(s.labels)} ${num(s.sum)}`)
      lines.push(`${this.name}_count${labelText(s.labels)} ${s.count}`)
    }
    return lines.join('\n')
  }
}

/** A value read when scraped (projection lag, polls held, pool waiters). */
export class Gauge implements Metric {
  readonly name: string
  private readonly help: string
  private readonly collect: () => Sample[] | Promise<Sample[]>
  constructor(name: string, help: string, collect: () => Sample[] | Promise<Sample[]>) {
    this.name = name
    this.help = help
    this.collect = collect
  }
  async render(): Promise<string> {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} gauge`]
    for (const { labels, value } of await this.collect()) lines.push(`${this.name}${labelText(labels)} ${num(value)}`)
    return lines.join('\n')
  }
}

export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8'

export class MetricsRegistry {
  private readonly metrics: Metric[] = []

  counter(name: string, help: string): Counter {
    return this.add(new Counter(name, help))
  }
  histogram(name: string, help: string, buckets?: readonly number[]): Histogram {
    return this.add(new Histogram(name, help, buckets))
  }
  gauge(name: string, help: string, collect: () => Sample[] | Promise<Sample[]>): Gauge {
    return this.add(new Gauge(name, help, collect))
  }

  private add<M extends Metric>(m: M): M {
    if (this.metrics.some((x) => x.name === m.name)) throw new Error(`metric ${m.name} registered twice`)
    this.metrics.push(m)
    return m
  }

  /** The exposition. A gauge whose collector fails is left out (and counted), never failing the scrape. */
  async render(): Promise<string> {
    let failed = 0
    const parts = await Promise.all(
      this.metrics.map((m) =>
        m.render().catch(() => {
          failed++
          return ''
        }),
      ),
    )
    parts.push(
      '# HELP workspace_metrics_collect_failures Gauges that could not be read in this scrape.',
      '# TYPE workspace_metrics_collect_failures gauge',
      `workspace_metrics_collect_failures ${failed}`,
    )
    return `${parts.filter(Boolean).join('\n')}\n`
  }
}
