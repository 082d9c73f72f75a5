// npm run replay -- [--tenant ID] [--stream NAME] [--actor ID] [--from TIME] [--to TIME] [--types a,b.*] [--format table|jsonl]
//                   [--as-of TIME --stream NAME]
import { parseArgs } from 'node:util'
import { auditReader } from '../adapters/event-audit.ts'
import { publicPosition, type RecordedEvent } from '../adapters/event-store.ts'
import { formatCount, Progress } from '../adapters/progress.ts'
import { eventUpcasters } from '../domain/schema-versions.ts'
import { upcast } from '../domain/upcasting.ts'
import { categoryOf, decidersByCategory, foldStream } from './deciders.ts'
import { EXIT, openTooling, runTool, UsageError } from './tooling.ts'

const USAGE = `usage: npm run replay -- [filters] [--format table|jsonl] [--limit N]
       npm run replay -- --as-of TIME --stream NAME

Audit replay: the events of a tenant, a stream or an actor over a time range, oldest first, as stored.
  --tenant ID        one tenant's (org's) events (Postgres: read through the tenant index)
  --stream NAME      one stream, e.g. room-0190...
  --actor ID         events written by this actor (its id, or type:id such as operator:ops@example.com)
  --from TIME        occurredAt at or after TIME (ISO 8601, e.g. 2025-03-03 or 2025-03-03T09:30:00Z)
  --to TIME          occurredAt at or before TIME
  --types LIST       comma-separated event types; a trailing * matches a prefix (message.*)
  --format FORMAT    table (default) or jsonl (one stored event per line, with position and metadata)
  --limit N          stop after N matching events
  --as-of TIME       with --stream: fold the stream with its decider up to TIME and print its state then
  --quiet            no progress on stderr

Works against the configured event store (EVENT_STORE=postgres|kurrentdb). Progress goes to stderr.
Exit codes: 0 done, 1 failure, 2 bad arguments.`

const parseTime = (flag: string, v: string | undefined, endOfDay = false): Date | undefined => {
  if (v === undefined) return undefined
  const dateOnly = /^\d{4}-\d{2}-\d{2}$/.test(v)
  const d = new Date(dateOnly ? `${v}T${endOfDay ? '23:59:59.999' : '00:00:00.000'}Z` : v)
  if (Number.isNaN(d.getTime())) throw new UsageError(`--${flag}: "${v}" is not an ISO 8601 time\n\n${USAGE}`)
  return d
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

const COLUMNS = [
  ['position', 10],
  ['time', 24],
  ['stream', 46],
  ['type', 26],
  ['actor', 44],
  ['correlation', 36],
  ['causation', 36],
] as const

const row = (cells: readonly string[]) =>
  cells
    .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(COLUMNS[i]![1])))
    .join('  ')
    .trimEnd()

const tableLine = (e: RecordedEvent) =>
  row([
    String(publicPosition(e.position)),
    e.metadata.occurredAt,
    e.streamName,
    e.metadata.schemaVersion > 1 ? `${e.type}@v${e.metadata.schemaVersion}` : e.type,
    `${e.metadata.actor.type}:${e.metadata.actor.id}`,
    e.metadata.correlationId,
    e.metadata.causationId ?? '-',
  ])

const jsonLine = (e: RecordedEvent) =>
  JSON.stringify({
    position: publicPosition(e.position),
    transactionId: e.position.transactionId.toString(),
    sequence: e.position.sequence.toString(),
    id: e.id,
    stream: e.streamName,
    revision: Number(e.revision),
    type: e.type,
    data: e.data,
    metadata: e.metadata,
  })

/** Maps and Sets as JSON: a folded state prints as what it holds. */
const stateJson = (state: unknown): string =>
  JSON.stringify(
    state,
    (_k, v) => {
      if (v instanceof Map) return Object.fromEntries(v)
      if (v instanceof Set) return [...v]
      if (typeof v === 'bigint') return v.toString()
      return v
    },
    2,
  )

runTool(async () => {
  const options = {
    tenant: { type: 'string' },
    stream: { type: 'string' },
    actor: { type: 'string' },
    from: { type: 'string' },
    to: { type: 'string' },
    types: { type: 'string' },
    format: { type: 'string' },
    limit: { type: 'string' },
    'as-of': { type: 'string' },
    quiet: { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  } as const
  let values: ReturnType<typeof parseArgs<{ options: typeof options }>>['values']
  try {
    ;({ values } = parseArgs({ options, strict: true }))
  } catch (e) {
    throw new UsageError(`${(e as Error).message}\n\n${USAGE}`)
  }
  if (values.help) {
    process.stdout.write(`${USAGE}\n`)
    return EXIT.ok
  }
  const format = values.format ?? 'table'
  if (format !== 'table' && format !== 'jsonl') throw new UsageError(`--format: table or jsonl, not "${format}"\n\n${USAGE}`)
  if (values.tenant !== undefined && !UUID.test(values.tenant)) throw new UsageError(`--tenant: expected a UUID\n\n${USAGE}`)
  const limit = values.limit === undefined ? Number.POSITIVE_INFINITY : Number(values.limit)
  if (!(limit > 0) || (Number.isFinite(limit) && !Number.isInteger(limit)))
    throw new UsageError(`--limit: expected an integer > 0\n\n${USAGE}`)
  const from = parseTime('from', values.from)
  const to = parseTime('to', values.to, true)
  if (from && to && from > to) throw new UsageError(`--from is after --to\n\n${USAGE}`)
  const asOf = parseTime('as-of', values['as-of'])
  const types = values.types
    ?.split(',')
    .map((t) => t.trim())
    .filter(Boolean)

  if (asOf) {
    if (!values.stream) throw new UsageError(`--as-of needs --stream\n\n${USAGE}`)
    const category = categoryOf(values.stream)
    const decider = decidersByCategory.get(category)
    if (!decider) {
      throw new UsageError(
        `no decider folds "${category}" streams; known categories: ${[...decidersByCategory.keys()].join(', ')}\n\n${USAGE}`,
      )
    }
    const tools = await openTooling({ migrate: false, applicationName: 'workspace-replay' })
    try {
      // Folded in the newest shape of each event type, as the command handlers fold them.
      const events = (await tools.store.readStream(values.stream)).filter(
        (e) => Date.parse(e.metadata.occurredAt) <= asOf.getTime(),
      )
      if (events.length === 0) {
        process.stderr.write(`${values.stream} had no events at ${asOf.toISOString()}\n`)
      }
      const { state, folded, unknownTypes } = foldStream(
        decider,
        events.map((e) => ({ type: e.type, data: upcast(eventUpcasters, e.type, e.metadata.schemaVersion ?? 1, e.data).data })),
      )
      const last = events[events.length - 1]
      process.stdout.write(
        `${values.stream} as of ${asOf.toISOString()}: ${folded} event(s) folded` +
          (last
            ? `, revision ${last.revision}, last ${last.type} at ${last.metadata.occurredAt} (position ${publicPosition(last.position)})`
            : '') +
          (Object.keys(unknownTypes).length ? `; not folded by the ${category} decider: ${JSON.stringify(unknownTypes)}` : '') +
          `\n${stateJson(state)}\n`,
      )
      return EXIT.ok
    } finally {
      await tools.close()
    }
  }

  const tools = await openTooling({ migrate: false, applicationName: 'workspace-replay' })
  const progress = new Progress({ quiet: Boolean(values.quiet) })
  try {
    const reader = auditReader(
      tools.adapter,
      {
        ...(values.tenant ? { tenantId: values.tenant } : {}),
        ...(values.stream ? { stream: values.stream } : {}),
        ...(values.actor ? { actor: values.actor } : {}),
        ...(from ? { from } : {}),
        ...(to ? { to } : {}),
        ...(types?.length ? { types } : {}),
      },
      { pool: tools.pool },
    )
    const out: string[] = []
    const flush = () => {
      if (out.length) process.stdout.write(`${out.join('\n')}\n`)
      out.length = 0
    }
    if (format === 'table') out.push(row(COLUMNS.map(([name]) => name)))
    let scanned = 0
    let matched = 0
    while (matched < limit) {
      const page = await reader.next()
      scanned += page.scanned
      for (const e of page.events) {
        if (matched >= limit) break
        out.push(format === 'table' ? tableLine(e) : jsonLine(e))
        matched++
      }
      flush()
      progress.update({ label: `replay (${reader.plan})`, done: scanned, extra: `${formatCount(matched)} matched` })
      if (page.done) break
    }
    flush()
    progress.update({ label: `replay (${reader.plan})`, done: scanned, extra: `${formatCount(matched)} matched` }, true)
    progress.done()
    return EXIT.ok
  } finally {
    await tools.close()
  }
})
