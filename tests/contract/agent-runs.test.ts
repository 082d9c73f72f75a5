import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { AgentRunsHttpError, agentRunsHttp } from '../../adapters/agent-runs-http.ts'
import { signUp } from '../support/identity.ts'
import { eventCount, startTestServer, type TestServer } from '../support/server.ts'
import { agentRunsContract } from './agent-runs.contract.ts'

const SERVICE_TOKEN = 'agent-runs-contract-service-token-0123456789'
// The API with its projectors and processors, and no agents worker: the suite is the worker.
const ROLES = 'api,projector,processors,realtime'

let inProcess: TestServer | undefined
agentRunsContract(
  'in process',
  async () => {
    inProcess = await startTestServer({ ROLES, SERVICE_TOKEN })
    return { server: inProcess, port: inProcess.services.agentRuns }
  },
  async () => inProcess?.close(),
)

let remote: TestServer | undefined
agentRunsContract(
  'over /api/internal',
  async () => {
    remote = await startTestServer({ ROLES, SERVICE_TOKEN })
    return { server: remote, port: agentRunsHttp({ baseUrl: remote.url, serviceToken: SERVICE_TOKEN }) }
  },
  async () => remote?.close(),
)

describe('/api/internal/agent-runs/* over HTTP', () => {
  let server: TestServer
  beforeAll(async () => {
    server = await startTestServer({ ROLES, SERVICE_TOKEN })
  }, 60_000)
  afterAll(async () => server?.close())

  it('takes the service credential only', async () => {
    const owner = await signUp(server, { email: 'owner@internal-runs.test', orgName: 'Internal Runs', username: 'owner' })
    for (const token of [undefined, owner.token, `${SERVICE_TOKEN}x`]) {
      const r = await server.request('GET', '/api/internal/agent-runs/claimable', token ? { token } : {})
      expect(r.status).toBe(401)
      expect(r.headers.get('content-type')).toContain('application/problem+json')
    }
    const wrong = agentRunsHttp({ baseUrl: server.url, serviceToken: 'not-the-service-token-0123456789abcdef' })
    await expect(wrong.claimable(1)).rejects.toBeInstanceOf(AgentRunsHttpError)
  })

  it('answers bad input with problem+json and changes nothing', async () => {
    const service = { token: SERVICE_TOKEN }
    const before = await eventCount(server)
    const runId = '01935c7e-5a4b-7c2d-8e9f-0a1b2c3d4e5f'
    const tenantId = '01935c7e-5a4b-7c2d-8e9f-0a1b2c3d4e60'
    const bad = [
      ['POST', `/api/internal/agent-runs/${runId}/commands`, { tenantId, command: { type: 'explode', runId } }],
      ['POST', `/api/internal/agent-runs/${runId}/commands`, { tenantId, command: { type: 'complete', runId, workerId: 'w' } }],
      ['POST', `/api/internal/agent-runs/not-a-uuid/claim`, { tenantId, workerId: 'w', leaseMs: 5_000 }],
      ['POST', `/api/internal/agent-runs/${runId}/claim`, { tenantId, workerId: 'w', leaseMs: 10 }],
      ['POST', `/api/internal/agent-runs/${runId}/tool-calls`, { tenantId, workerId: 'w', generation: -1 }],
      ['GET', '/api/internal/agent-runs/stopped?ids=nope', undefined],
      ['GET', '/api/internal/agent-runs/claimable?limit=0', undefined],
    ] as const
    for (const [method, path, body] of bad) {
      const r = await server.request(method, path, { ...service, ...(body ? { body } : {}) })
      expect(r.status, `${method} ${path}: ${JSON.stringify(r.body)}`).toBe(400)
      expect(r.body.code).toBe('INVALID_INPUT')
    }
    const missing = [
      ['GET', `/api/internal/agent-runs/${runId}/context?tenantId=${tenantId}`, undefined],
      ['POST', `/api/internal/agent-runs/${runId}/reply`, { tenantId, text: 'hi', messageId: runId }],
      [
        'POST',
        `/api/internal/agent-runs/${runId}/tool-calls`,
        { tenantId, workerId: 'w', generation: 1, toolCallId: 'c', tool: 'read_messages', arguments: '{}' },
      ],
    ] as const
    for (const [method, path, body] of missing) {
      const r = await server.request(method, path, { ...service, ...(body ? { body } : {}) })
      expect(r.status, `${method} ${path}: ${JSON.stringify(r.body)}`).toBe(404)
    }
    const claim = await server.request('POST', `/api/internal/agent-runs/${runId}/claim`, {
      ...service,
      body: { tenantId, workerId: 'w', leaseMs: 5_000 },
    })
    expect(claim.status).toBe(409)
    expect(await eventCount(server)).toBe(before)
  })
})
