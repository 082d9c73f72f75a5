import { describe, expect, it } from 'vitest'
import { commandToProjectionSeconds, MetricsRegistry, observeProjected } from '../../adapters/metrics.ts'

describe('Prometheus exposition (prom-client)', () => {
  it('renders cumulative histogram buckets, sums and counts, and escapes label values', async () => {
    const registry = new MetricsRegistry()
    const h = registry.histogram('x_seconds', 'X.', ['route'], [0.1, 1])
    h.observe({ route: 'a"b\\c\nd' }, 0.05)
    h.observe({ route: 'a"b\\c\nd' }, 0.5)
    h.observe({ route: 'a"b\\c\nd' }, 5)
    registry.counter('x_total', 'X.', ['status']).inc({ status: '2xx' }, 3)
    const text = await registry.render()
    const label = 'route="a\\"b\\\\c\\nd"'
    expect(text).toContain('# TYPE x_seconds histogram')
    expect(text).toContain(`x_seconds_bucket{le="0.1",${label}} 1`)
    expect(text).toContain(`x_seconds_bucket{le="1",${label}} 2`)
    expect(text).toContain(`x_seconds_bucket{le="+Inf",${label}} 3`)
    expect(text).toContain(`x_seconds_sum{${label}} 5.55`)
    expect(text).toContain(`x_seconds_count{${label}} 3`)
    expect(text).toContain('x_total{status="2xx"} 3')
    expect(text.endsWith('\n')).toBe(true)
  })

  it('reads gauges at scrape time; a failed read is left out and counted, never failing the scrape', async () => {
    const registry = new MetricsRegistry()
    let down = true
    registry.gauge('x_labelled', 'X.', ['kind'], () => {
      if (down) throw new Error('down')
      return [{ labels: { kind: 'a' }, value: 7 }]
    })
    registry.gauge('x_plain', 'X.', [], async () => {
      if (down) throw new Error('down')
      return [{ labels: {}, value: 2 }]
    })
    registry.gauge('x_fine', 'X.', [], () => [{ labels: {}, value: 1 }])
    const failing = await registry.render()
    expect(failing).toContain('workspace_metrics_collect_failures 2')
    expect(failing).not.toContain('x_labelled{')
    expect(failing).not.toMatch(/^x_plain /m)
    expect(failing).toContain('x_fine 1')
    down = false
    const recovered = await registry.render()
    expect(recovered).toContain('workspace_metrics_collect_failures 0')
    expect(recovered).toContain('x_labelled{kind="a"} 7')
    expect(recovered).toContain('x_plain 2')
  })

  it('adds the default process metrics', async () => {
    const text = await new MetricsRegistry().render()
    for (const name of [
      'process_cpu_user_seconds_total',
      'process_resident_memory_bytes',
      'nodejs_heap_size_used_bytes',
      'nodejs_eventloop_lag_p99_seconds',
    ])
      expect(text).toContain(`# TYPE ${name} `)
  })

  it('refuses a metric registered twice', () => {
    const registry = new MetricsRegistry()
    registry.counter('dup', 'D.')
    expect(() => registry.counter('dup', 'D.')).toThrow(/already been registered/)
  })
})

describe('command-to-projection latency', () => {
  const count = async (projector: string) =>
    (await commandToProjectionSeconds.get()).values.find(
      (v) => v.metricName === 'workspace_command_to_projection_seconds_count' && v.labels.projector === projector,
    )?.value ?? 0
  const sum = async (projector: string) =>
    (await commandToProjectionSeconds.get()).values.find(
      (v) => v.metricName === 'workspace_command_to_projection_seconds_sum' && v.labels.projector === projector,
    )?.value ?? 0
  const event = (occurredAt: string) => ({ metadata: { occurredAt } })

  it('observes once per command of a batch, from its occurredAt, never below zero', async () => {
    const now = Date.parse('2030-01-01T00:00:10.000Z')
    observeProjected(
      'unit_probe',
      [
        event('2030-01-01T00:00:09.000Z'),
        event('2030-01-01T00:00:09.000Z'),
        event('2030-01-01T00:00:08.000Z'),
        event('2030-01-01T00:00:11.000Z'),
      ],
      now,
    )
    expect(await count('unit_probe')).toBe(3)
    expect(await sum('unit_probe')).toBe(3)
  })

  it('is exposed by every app registry', async () => {
    const a = new MetricsRegistry()
    const b = new MetricsRegistry()
    a.register(commandToProjectionSeconds)
    b.register(commandToProjectionSeconds)
    for (const r of [a, b])
      expect(await r.render()).toContain('workspace_command_to_projection_seconds_count{projector="unit_probe"} 3')
  })
})
