import { mkdtemp, rm } from 'node:fs/promises'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { serve } from '@hono/node-server'
import type { DestinationStream } from 'pino'
import { loadConfig } from '../../adapters/config.ts'
import { createLogger } from '../../adapters/logger.ts'
import { createApp } from '../../bin/app.ts'
import { type Services, startServices } from '../../bin/services.ts'
import { createTestDatabase, type TestDatabase } from './db.ts'

export const OPERATOR_TOKEN = 'test-operator-token-0123456789abcdef'

export type TestServer = {
  url: string
  services: Services
  database: TestDatabase
  /** fetch against the server, JSON in and out. */
  request(
    method: string,
    path: string,
    init?: { body?: unknown; token?: string; headers?: Record<string, string> },
  ): Promise<TestResponse>
  close(): Promise<void>
}

export type TestResponse = { status: number; headers: Headers; body: any }

/**
 * The whole backend, in-process, over a real socket, on its own fresh database. The socket listens first,
 * so PUBLIC_URL (the dev IdP's issuer, the OIDC redirect URI) names it; DATA_DIR is a fresh temporary
 * directory. `logTo` receives the server's log lines (default: LOG_LEVEL silent, nothing).
 */
export async function startTestServer(
  env: Record<string, string> = {},
  options: { logTo?: DestinationStream } = {},
): Promise<TestServer> {
  const database = await createTestDatabase()
  let handler: (req: Request, bindings: unknown) => Response | Promise<Response> = () => new Response('starting', { status: 503 })
  const server = await new Promise<ReturnType<typeof serve>>((resolve) => {
    const s = serve({ fetch: (req, bindings) => handler(req, bindings), hostname: '127.0.0.1', port: 0 }, () => resolve(s))
  })
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  const dataDir = await mkdtemp(join(tmpdir(), 'ws-test-'))
  const config = loadConfig({
    DATABASE_URL: database.url,
    PORT: '0',
    PUBLIC_URL: url,
    DATA_DIR: dataDir,
    OPERATOR_TOKEN,
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? (options.logTo ? 'debug' : 'silent'),
    CONSISTENCY_TIMEOUT_MS: '5000',
    // Test files run side by side on one cluster (100 connections here): a test server's API and event-store pools
    // stay small unless a test asks for more.
    DATABASE_POOL_SIZE: '8',
    // The server logs in as the app's login (ROLES.app) with the run's password (global-setup).
    APP_DATABASE_PASSWORD: process.env.APP_DATABASE_PASSWORD,
    ...env,
  })
  const services = await startServices(config, createLogger(config.LOG_LEVEL, {}, options.logTo))
  const app = createApp(services)
  handler = (req, bindings) => app.fetch(req, bindings)
  return {
    url,
    services,
    database,
    async request(method, path, init = {}) {
      const headers: Record<string, string> = { ...init.headers }
      if (init.token) headers.authorization = `Bearer ${init.token}`
      let body: string | undefined
      if (init.body !== undefined) {
        body = typeof init.body === 'string' ? init.body : JSON.stringify(init.body)
        headers['content-type'] ??= 'application/json'
      }
      // Redirects are answers to check, not to follow (the login flow leaves this origin for the IdP).
      const res = await fetch(url + path, { method, headers, redirect: 'manual', ...(body !== undefined ? { body } : {}) })
      const text = await res.text()
      let parsed: unknown = text
      try {
        parsed = text ? JSON.parse(text) : null
      } catch {}
      return { status: res.status, headers: res.headers, body: parsed }
    },
    async close() {
      if ('closeAllConnections' in server) server.closeAllConnections()
      await new Promise((r) => server.close(r))
      await services.close()
      await database.drop()
      await rm(dataDir, { recursive: true, force: true })
    },
  }
}

/**
 * How many events the server's store holds, committed or not yet visible to subscribers: unlike the head
 * position, it does not move when transactions elsewhere on the cluster end.
 */
export async function eventCount(server: TestServer): Promise<number> {
  const { rows } = await server.services.pool.query<{ n: number }>('select count(*)::int as n from eventstore.events')
  return rows[0]!.n
}
