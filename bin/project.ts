// npm run project -- [--until-caught-up] [--timeout <seconds>]
import { parseArgs } from 'node:util'
import { loadConfig } from '../adapters/config.ts'
import { comparePositions } from '../adapters/event-store.ts'
import { createLogger } from '../adapters/logger.ts'
import { formatCount, Progress } from '../adapters/progress.ts'
import { startServices } from './services.ts'
import { EXIT, runTool, UsageError } from './tooling.ts'

const USAGE = `usage: npm run project -- [--until-caught-up] [--timeout SECONDS]

Runs every projector (the projector role alone). With --until-caught-up it stops once all of them have passed
the head of the event store as it stood at start, and exits 0 (1 on timeout).`

runTool(async () => {
  let values: { 'until-caught-up'?: boolean; timeout?: string; help?: boolean }
  try {
    ;({ values } = parseArgs({
      options: { 'until-caught-up': { type: 'boolean' }, timeout: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
      strict: true,
    }))
  } catch (e) {
    throw new UsageError(`${(e as Error).message}\n\n${USAGE}`)
  }
  if (values.help) {
    process.stdout.write(`${USAGE}\n`)
    return EXIT.ok
  }
  const timeoutS = values.timeout === undefined ? 600 : Number(values.timeout)
  if (!Number.isFinite(timeoutS) || timeoutS <= 0) throw new UsageError(`--timeout: expected seconds > 0\n\n${USAGE}`)
  const config = { ...loadConfig(), ROLES: ['projector' as const] }
  const logger = createLogger(config.LOG_LEVEL === 'info' ? 'warn' : config.LOG_LEVEL)
  const services = await startServices(config, logger)
  const engine = services.engine!
  if (!values['until-caught-up']) {
    await new Promise<void>((resolve) => {
      process.once('SIGINT', resolve)
      process.once('SIGTERM', resolve)
    })
    await services.close()
    return EXIT.ok
  }
  const head = await services.store.headPosition()
  const progress = new Progress()
  const deadline = Date.now() + timeoutS * 1000
  try {
    while (true) {
      const statuses = engine.statuses()
      const behind = services.projectors.filter((p) => {
        const s = statuses.find((x) => x.name === p.name)
        return !s || comparePositions(s.checkpoint, head) < 0
      })
      const applied = statuses.reduce((a, s) => a + s.eventsApplied, 0)
      const least = statuses.length ? Math.min(...statuses.map((s) => Number(s.checkpoint.sequence))) : 0
      progress.update(
        {
          label: 'project',
          done: applied,
          fraction: head.sequence > 0n ? least / Number(head.sequence) : 1,
          extra: behind.length ? `waiting for ${behind.map((p) => p.name).join(', ')}` : '',
        },
        behind.length === 0,
      )
      if (behind.length === 0) break
      if (Date.now() > deadline) {
        progress.done()
        process.stderr.write(`timed out: ${behind.map((p) => p.name).join(', ')} behind position ${head.sequence}\n`)
        return EXIT.failure
      }
      await new Promise((r) => setTimeout(r, 100))
    }
    progress.done()
    process.stderr.write(`caught up to position ${formatCount(Number(head.sequence))}\n`)
    return EXIT.ok
  } finally {
    await services.close()
  }
})
