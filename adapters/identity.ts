import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import { type AgentTokenService, createAgentTokenService, loadOrCreateAgentKeySetFile } from './agent-tokens.ts'
import { type AuthKeys, loadAuthKeys } from './auth-keys.ts'
import { type Config, publicUrl } from './config.ts'
import { createDevIdp, DEV_IDP_MOUNT_PATH, type DevIdp } from './dev-idp.ts'
import { loadOrCreateJsonFile } from './json-file-store.ts'
import { createOidcClient, type OidcClient } from './oidc-client.ts'
import type { AnyDb } from './postgres.ts'
import { PostgresReplayCache } from './postgres-replay-cache.ts'
import type { ReplayCache } from './replay-cache.ts'

/**
 * Everything authentication needs from the outside world: the OpenID Provider (OIDC_ISSUER, or the dev
 * IdP this process serves at /dev-idp), the replay cache shared by all processes, agent token keys and
 * the server's secret keys.
 */
export type Identity = {
  /** The public origin of this server, e.g. https://app.example.com. */
  readonly publicUrl: string
  readonly oidc: OidcClient
  /** Present when OIDC_ISSUER is unset. */
  readonly devIdp: DevIdp | null
  readonly replayCache: ReplayCache
  readonly agentTokens: AgentTokenService
  readonly keys: AuthKeys
}

export type IdentityDeps = { readonly identity: Identity }

const DEV_CLIENT_ID = 'workspace-dev'

/** The dev IdP's one client: its secret is generated once and kept under DATA_DIR. */
const loadDevClient = (dataDir: string) =>
  loadOrCreateJsonFile(
    join(dataDir, 'dev-idp', 'client.json'),
    (v) => {
      const secret = (v as { clientSecret?: unknown } | null)?.clientSecret
      if (typeof secret !== 'string' || secret.length < 32) throw new Error('clientSecret: expected 32+ characters')
      return { clientId: DEV_CLIENT_ID, clientSecret: secret }
    },
    async () => ({ clientId: DEV_CLIENT_ID, clientSecret: randomBytes(32).toString('base64url') }),
  )

export async function startIdentity(config: Config, db: AnyDb): Promise<Identity> {
  const origin = publicUrl(config).replace(/\/+$/, '')
  const redirectUri = `${origin}/auth/callback`
  let devIdp: DevIdp | null = null
  let issuer: string
  let client: { clientId: string; clientSecret: string }
  if (config.OIDC_ISSUER) {
    issuer = config.OIDC_ISSUER
    client = { clientId: config.OIDC_CLIENT_ID!, clientSecret: config.OIDC_CLIENT_SECRET! }
  } else {
    client = await loadDevClient(config.DATA_DIR)
    devIdp = await createDevIdp({
      publicUrl: origin,
      dataDir: join(config.DATA_DIR, 'dev-idp'),
      mountPath: DEV_IDP_MOUNT_PATH,
      environment: config.NODE_ENV,
      client: { ...client, redirectUris: [redirectUri] },
    })
    issuer = devIdp.issuer
  }
  const replayCache = new PostgresReplayCache(db)
  const oidc = createOidcClient({
    issuer,
    ...client,
    redirectUri,
    scopes: ['openid', 'email', 'profile'],
    replayCache,
    // The dev IdP is served at PUBLIC_URL, which may be plain http off loopback (DEV_IDP=1 on a LAN).
    allowInsecureRequests: devIdp !== null,
  })
  const agentTokens = createAgentTokenService({
    issuer: origin,
    audience: `${origin}/api`,
    loadKeySet: () => loadOrCreateAgentKeySetFile(join(config.DATA_DIR, 'auth', 'agent-token-keys.json')),
  })
  const keys = await loadAuthKeys({ secretKey: config.AUTH_SECRET_KEY, dataDir: config.DATA_DIR })
  return { publicUrl: origin, oidc, devIdp, replayCache, agentTokens, keys }
}
