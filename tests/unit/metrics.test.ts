import { describe, expect, it } from 'vitest'
import { MetricsRegistry } from '../../adapters/metrics.ts'

describe('Prometheus text exposition', () => {
  it('renders cumulative histogram buckets, sums and counts, and escapes label values', async () => {
    const registry = new MetricsRegistry()
    const h = registry.histogram('x_seconds', 'X.', [0.1, 1])
    h.observe({ route: 'a"b\\c\nd' }, 0.05)
    h.observe({ route: 'a"b\\c\nd' }, 0.5)
    h.observe({ route: 'a"b\\c\nd' }, 5)
    registry.counter('x_total', 'X.').inc({ status: '2xx' }, 3)
    registry.gauge('x_failing', 'X.', () => {
      throw new Error('down')
    })
    const text = await registry.render()
    const label = 'route="a\\"b\\\\c\\nd"'
    expect(text).toContain(`x_seconds_bucket{${label},le="0.1"} 1`)
    expect(text).toContain(`x_seconds_bucket{${label},le="1"} 2`)
    expect(text).toContain(`x_seconds_bucket{${label},le="+Inf"} 3`)
    expect(text).toContain(`x_seconds_sum{${label}} 5.55`)
    expect(text).toContain(`x_seconds_count{${label}} 3`)
    expect(text).toContain('x_total{status="2xx"} 3')
    expect(text).toContain('workspace_metrics_collect_failures 1')
    expect(text.endsWith('\n')).toBe(true)
  })

  it('refuses a metric registered twice', () => {
    const registry = new MetricsRegistry()
    registry.counter('dup', 'D.')
    expect(() => registry.counter('dup', 'D.')).toThrow(/twice/)
  })
})
