// npm run seed -- [--orgs 2] [--users 8] [--rooms 6] [--messages 2000] [--seed 42] [--concurrency 4]
import { parseArgs } from 'node:util'
import { Progress } from '../adapters/progress.ts'
import { eventUpcasters } from '../domain/schema-versions.ts'
import { seedWorkload } from './seed-workload.ts'
import { EXIT, openTooling, runTool, UsageError } from './tooling.ts'

const USAGE = `usage: npm run seed -- [--orgs N] [--users N] [--rooms N] [--messages N] [--seed N] [--concurrency N] [--quiet]

Writes a realistic workload through the command pipeline into the configured event store (DATABASE_URL,
EVENT_STORE): orgs, users, spaces, public and private rooms and DMs, messages with threads, mentions, edits,
reactions, deletes and range deletes, read marks and drafts. Prints a JSON summary on stdout.`

const int = (name: string, v: string | undefined, fallback: number, min = 0): number => {
  if (v === undefined) return fallback
  const n = Number(v)
  if (!Number.isInteger(n) || n < min) throw new UsageError(`--${name}: expected an integer >= ${min}, got "${v}"\n\n${USAGE}`)
  return n
}

runTool(async () => {
  let values: Record<string, string | boolean | undefined>
  try {
    ;({ values } = parseArgs({
      options: {
        orgs: { type: 'string' },
        users: { type: 'string' },
        rooms: { type: 'string' },
        messages: { type: 'string' },
        seed: { type: 'string' },
        concurrency: { type: 'string' },
        quiet: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
    }))
  } catch (e) {
    throw new UsageError(`${(e as Error).message}\n\n${USAGE}`)
  }
  if (values.help) {
    process.stdout.write(`${USAGE}\n`)
    return EXIT.ok
  }
  const options = {
    orgs: int('orgs', values.orgs as string | undefined, 2, 1),
    usersPerOrg: int('users', values.users as string | undefined, 8, 3),
    roomsPerOrg: int('rooms', values.rooms as string | undefined, 6, 4),
    messages: int('messages', values.messages as string | undefined, 2_000),
    seed: int('seed', values.seed as string | undefined, 42),
    concurrency: int('concurrency', values.concurrency as string | undefined, 4, 1),
  }
  const tools = await openTooling({ applicationName: 'workspace-seed' })
  const progress = new Progress({ quiet: Boolean(values.quiet) })
  const started = Date.now()
  try {
    const summary = await seedWorkload(
      { store: tools.store, db: tools.db, upcasters: eventUpcasters },
      {
        ...options,
        onProgress: (p) =>
          progress.update({
            label: 'seed',
            done: p.commands,
            unit: 'commands',
            fraction: p.totalMessages ? p.messages / p.totalMessages : null,
            extra: `${p.messages}/${p.totalMessages} messages`,
          }),
      },
    )
    progress.done()
    const events = Object.values(summary.events).reduce((a, b) => a + b, 0)
    process.stdout.write(
      `${JSON.stringify({
        orgs: summary.orgs.map((o) => ({ orgId: o.orgId, slug: o.slug, users: o.users.length, rooms: o.rooms.length })),
        commands: summary.commands,
        events,
        byType: summary.events,
        seconds: (Date.now() - started) / 1000,
      })}\n`,
    )
    return EXIT.ok
  } finally {
    await tools.close()
  }
})
