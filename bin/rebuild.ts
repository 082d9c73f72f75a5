// npm run rebuild -- [names...] [--verify] [--batch-size N] [--restart] [--keep] [--list]
import { parseArgs } from 'node:util'
import { formatPosition } from '../adapters/event-store.ts'
import { formatCount, formatDuration, Progress } from '../adapters/progress.ts'
import {
  type RebuildDeps,
  type RebuildProgress,
  type RowDifference,
  rebuild,
  rebuildableProjectors,
  shadowSchemaOf,
  type VerifyResult,
  verify,
} from '../projections/rebuild.ts'
import { EXIT, openTooling, runTool, UsageError } from './tooling.ts'

const USAGE = `usage: npm run rebuild -- [NAME...] [--verify] [--batch-size N] [--restart] [--keep] [--list]

Without --verify: builds each named projector (all when none is named) into shadow tables from position 0
while the live tables keep serving, catches up and swaps the shadow tables in, with the checkpoint, in one
transaction. A killed rebuild resumes from its shadow checkpoint when run again (--restart starts over).

With --verify: builds each projector into shadow tables up to its live checkpoint and compares them row by
row with the live tables; prints every difference and exits 1 if there is any. --keep keeps the shadow schema.

Exit codes: 0 done (no differences), 1 failure or differences, 2 bad arguments.`

const fraction = (p: RebuildProgress) => {
  const total = Number(p.head.sequence - p.start.sequence)
  return total > 0 ? Number(p.position.sequence - p.start.sequence) / total : 1
}

const show = (v: unknown) =>
  typeof v === 'string' ? JSON.stringify(v.length > 60 ? `${v.slice(0, 57)}...` : v) : JSON.stringify(v)

function describe(d: RowDifference): string[] {
  const key = Object.entries(d.key)
    .map(([k, v]) => `${k}=${v}`)
    .join(' ')
  const where = `${d.table} ${key}${d.tenantId ? ` (tenant ${d.tenantId})` : ''}`
  if (!d.live) return [`  + ${where}: only in the rebuild (missing from the live table)`]
  if (!d.rebuilt) return [`  - ${where}: only in the live table (the events do not produce it)`]
  const columns = [...new Set([...Object.keys(d.live), ...Object.keys(d.rebuilt)])].filter(
    (c) => JSON.stringify(d.live![c]) !== JSON.stringify(d.rebuilt![c]),
  )
  return [`  ~ ${where}:`, ...columns.map((c) => `      ${c}: live ${show(d.live![c])}  rebuilt ${show(d.rebuilt![c])}`)]
}

runTool(async () => {
  let parsed: ReturnType<typeof parseArgs<{ options: typeof options; allowPositionals: true }>>
  const options = {
    verify: { type: 'boolean' },
    'batch-size': { type: 'string' },
    restart: { type: 'boolean' },
    keep: { type: 'boolean' },
    list: { type: 'boolean' },
    quiet: { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  } as const
  try {
    parsed = parseArgs({ options, allowPositionals: true, strict: true })
  } catch (e) {
    throw new UsageError(`${(e as Error).message}\n\n${USAGE}`)
  }
  const { values, positionals } = parsed
  if (values.help) {
    process.stdout.write(`${USAGE}\n`)
    return EXIT.ok
  }
  const all = rebuildableProjectors()
  if (values.list) {
    for (const p of all) process.stdout.write(`${p.name}\tv${p.version}\t${p.schema}: ${p.tables.join(', ')}\n`)
    return EXIT.ok
  }
  const unknown = positionals.filter((n) => !all.some((p) => p.name === n))
  if (unknown.length) {
    throw new UsageError(`unknown projector(s): ${unknown.join(', ')}; known: ${all.map((p) => p.name).join(', ')}\n\n${USAGE}`)
  }
  const batchSize = values['batch-size'] === undefined ? 2_000 : Number(values['batch-size'])
  if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > 100_000) {
    throw new UsageError(`--batch-size: expected an integer from 1 to 100000\n\n${USAGE}`)
  }
  const chosen = positionals.length ? all.filter((p) => positionals.includes(p.name)) : all

  const tools = await openTooling({ applicationName: values.verify ? 'workspace-verify' : 'workspace-rebuild' })
  // COPY needs raw connections: each database's own pool, as the same login as its Kysely.
  const pools = { control: tools.poolOf('control'), tenant: tools.poolOf('tenant') }
  const deps: RebuildDeps = {
    store: tools.store,
    dbFor: (schema) => (schema === 'control' ? tools.controlDb : tools.db),
    poolFor: (schema) => pools[schema],
  }
  const out = (line: string) => process.stdout.write(`${line}\n`)
  try {
    let differing = 0
    for (const p of chosen) {
      const progress = new Progress({ quiet: Boolean(values.quiet) })
      const onProgress = (r: RebuildProgress) =>
        progress.update(
          {
            label: `${values.verify ? 'verify' : 'rebuild'} ${p.name} v${p.version} ${r.phase}`.padEnd(28),
            done: r.events,
            fraction: fraction(r),
            extra: `@${r.position.sequence}/${r.head.sequence}`,
          },
          r.phase !== 'build',
        )
      const common = { batchSize, restart: Boolean(values.restart), onProgress }
      if (values.verify) {
        const result: VerifyResult = await verify(deps, p, { ...common, keep: Boolean(values.keep) })
        progress.done()
        const rows = Object.entries(result.rows)
          .map(([t, n]) => `${t} ${formatCount(n)}`)
          .join(', ')
        if (result.differences.length === 0) {
          out(`verify ${p.name} v${p.version} at ${formatPosition(result.position)}: identical (${rows})`)
        } else {
          differing++
          out(
            `verify ${p.name} v${p.version} at ${formatPosition(result.position)}: ${result.differences.length}${result.truncated ? '+' : ''} difference(s) (${rows})`,
          )
          for (const d of result.differences) for (const line of describe(d)) out(line)
        }
      } else {
        const result = await rebuild(deps, p, common)
        progress.done()
        const rate = result.ms > 0 ? (result.events * 1000) / result.ms : 0
        out(
          `rebuild ${p.name} v${p.version}: ${formatCount(result.events)} events in ${formatDuration(result.ms)} ` +
            `(${formatCount(rate)} events/s)${result.resumedFrom ? `, resumed from ${formatPosition(result.resumedFrom)}` : ''}; ` +
            `swapped in at ${formatPosition(result.position)} (shadow ${shadowSchemaOf(p)} dropped)`,
        )
      }
    }
    if (values.verify && differing > 0) {
      out(`${differing} projection(s) differ from a rebuild from the events`)
      return EXIT.failure
    }
    return EXIT.ok
  } finally {
    await tools.close()
  }
})
