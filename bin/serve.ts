import { serve } from '@hono/node-server'
import { ConfigError, loadConfig } from '../adapters/config.ts'
import { EmbeddedPostgresAccessError } from '../adapters/embedded-postgres.ts'
import { createLogger } from '../adapters/logger.ts'
import { serveRemoteAgents } from './agents.ts'
import { createApp } from './app.ts'
import { startServices } from './services.ts'

/** Exit codes: 0 clean stop, 1 failed to start, 2 bad configuration (the environment, or the database login it names). */
async function main() {
  let config: ReturnType<typeof loadConfig>
  try {
    config = loadConfig()
  } catch (e) {
    if (e instanceof ConfigError) {
      console.error(e.message)
      process.exit(2)
    }
    throw e
  }
  const logger = createLogger(config.LOG_LEVEL)
  if (config.AGENTS_API_URL && config.ROLES.every((r) => r === 'agents')) return serveRemoteAgents(config, logger)
  const services = await startServices(config, logger)
  const app = createApp(services)
  const server = serve({ fetch: app.fetch, hostname: config.HOST, port: config.PORT }, (info) =>
    logger.info({ url: `http://${info.address}:${info.port}`, roles: config.ROLES }, 'listening'),
  )

  let stopping = false
  const shutdown = async (signal: string) => {
    if (stopping) return
    stopping = true
    logger.info({ signal }, 'draining')
    const drained = new Promise<void>((resolve) => server.close(() => resolve()))
    // Long polls and keep-alive sockets would hold close() open: end idle ones now, the rest at the deadline.
    if ('closeIdleConnections' in server) server.closeIdleConnections()
    const deadline = setTimeout(() => {
      if ('closeAllConnections' in server) server.closeAllConnections()
    }, config.SHUTDOWN_TIMEOUT_MS)
    await drained
    clearTimeout(deadline)
    await services.close()
    logger.info('stopped')
    process.exit(0)
  }
  process.on('SIGTERM', () => void shutdown('SIGTERM'))
  process.on('SIGINT', () => void shutdown('SIGINT'))
}

main().catch((e) => {
  // A start refused for a reason the operator can fix gets its lines, not a stack trace.
  console.error(e instanceof EmbeddedPostgresAccessError || e instanceof ConfigError ? e.message : e)
  process.exit(e instanceof ConfigError ? 2 : 1)
})
