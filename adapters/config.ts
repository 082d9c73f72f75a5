import { isIP } from 'node:net'
import { z } from 'zod'

const roles = ['api', 'projector', 'realtime', 'processors', 'agents'] as const
export type Role = (typeof roles)[number]

const optionalUrl = z.url().optional()
const optionalString = z.string().min(1).optional()

/** Which header carries client addresses, and how many proxies of ours stand in front (each appends one entry). */
export type TrustProxy = { readonly header: 'x-forwarded-for' | 'forwarded'; readonly hops: number }

const trustProxy = z
  .string()
  .regex(/^(off|0|[1-9]|(x-forwarded-for|forwarded):[1-9])$/, 'expected off, a number of proxies (1-9), or forwarded:<n>')
  .transform((v): TrustProxy | null => {
    if (v === 'off' || v === '0') return null
    const [header, hops] = v.includes(':') ? v.split(':') : ['x-forwarded-for', v]
    return { header: header as TrustProxy['header'], hops: Number(hops) }
  })

/** The least a model's window may be: the 4,096 tokens held back for the answer, and as much again to ask. */
const MIN_WINDOW = 8_192
const MAX_WINDOW = 100_000_000

/** `model=tokens,model=tokens`: models' windows, by the start of their names. */
const modelWindows = z.string().transform((value, ctx): readonly (readonly [string, number])[] => {
  const windows: [string, number][] = []
  for (const entry of value
    .split(',')
    .map((e) => e.trim())
    .filter(Boolean)) {
    const match = /^([^\s=,]+)=(\d+)$/.exec(entry)
    const tokens = match ? Number(match[2]) : Number.NaN
    if (!match || tokens < MIN_WINDOW || tokens > MAX_WINDOW) {
      ctx.addIssue({
        code: 'custom',
        message: `expected model=tokens pairs separated by commas (tokens ${MIN_WINDOW}-${MAX_WINDOW}), e.g. llama3.1=131072,qwen2.5=32768: got "${entry}"`,
      })
      return z.NEVER
    }
    windows.push([match[1]!, tokens])
  }
  return windows
})

const schema = z.object({
  /** Unset is neither development nor production: a non-loopback HOST then needs what production needs. */
  NODE_ENV: z.enum(['development', 'test', 'production']).optional(),
  HOST: z.string().min(1).default('127.0.0.1'),
  PORT: z.coerce.number().int().min(0).max(65_535).default(3000),
  PUBLIC_URL: optionalUrl,
  BASE_DOMAIN: z.string().min(1).default('localhost'),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  ROLES: z
    .string()
    .default(roles.join(','))
    .transform((s) =>
      s
        .split(',')
        .map((r) => r.trim())
        .filter(Boolean),
    )
    .pipe(z.array(z.enum(roles)).min(1)),
  DATA_DIR: z.string().min(1).default('.data'),
  /** Every logical database at once (control, tenant, event store), unless one has its own URL below. */
  DATABASE_URL: optionalUrl,
  /** The control plane: the orgs registry, memberships, operators' data, parked events, keys. */
  CONTROL_DATABASE_URL: optionalUrl,
  /** Product data under row-level security, with the realtime streams and the fan-out's outbox. */
  TENANT_DATABASE_URL: optionalUrl,
  /** The Postgres event store (unset: the tenant database). */
  EVENTSTORE_DATABASE_URL: optionalUrl,
  /** The owner's login, which migrates (unset: DATABASE_URL, when that login owns the database or is a superuser). */
  MIGRATION_DATABASE_URL: optionalUrl,
  /** Password of the app's login role when the server derives that login from an owner's DATABASE_URL. */
  APP_DATABASE_PASSWORD: z
    .string()
    .regex(/^[\x21-\x7e]{16,}$/, 'expected 16+ printable ASCII characters')
    .optional(),
  DATABASE_POOL_SIZE: z.coerce.number().int().min(2).max(500).default(20),
  EMBEDDED_POSTGRES_PORT: z.coerce.number().int().min(1).max(65_535).default(54_329),
  EVENT_STORE: z.enum(['postgres', 'kurrentdb']).default('postgres'),
  EVENTSTORE_URL: optionalString,
  REDIS_URL: optionalUrl,
  OPERATOR_TOKEN: z.string().min(24).optional(),
  OIDC_ISSUER: optionalUrl,
  OIDC_CLIENT_ID: optionalString,
  OIDC_CLIENT_SECRET: optionalString,
  /**
   * The dev IdP (which signs anyone in as any email) and the X-Org/?org= stand-in for org hosts: `1` or `0`;
   * unset, on only for a loopback PUBLIC_URL outside production. Resolved to a boolean by loadConfig.
   */
  DEV_IDP: z.enum(['0', '1']).optional(),
  /** Off by default: X-Forwarded-For/Forwarded are anyone's to write unless a proxy of ours rewrites them. */
  TRUST_PROXY: trustProxy.default(null),
  /** Bearer credential of services calling /api/internal/* (unset: those routes refuse everyone). */
  SERVICE_TOKEN: z.string().min(32).optional(),
  /** 32 bytes, base64 or hex: seals agent secrets and signs login cookies (unset: a key kept under DATA_DIR). */
  AUTH_SECRET_KEY: optionalString,
  /** How long a Tenant API credential's authentication is reused at most, when no event says it changed. */
  PRINCIPAL_CACHE_TTL_MS: z.coerce.number().int().min(0).max(300_000).default(30_000),
  CONSISTENCY_TIMEOUT_MS: z.coerce.number().int().min(0).max(60_000).default(5_000),
  SHUTDOWN_TIMEOUT_MS: z.coerce.number().int().min(0).max(120_000).default(10_000),
  REALTIME_HEARTBEAT_MS: z.coerce.number().int().min(100).max(120_000).default(50_000),
  REALTIME_QUEUE_TTL_MS: z.coerce.number().int().min(1_000).default(600_000),
  RATE_LIMIT_IP_PER_MINUTE: z.coerce.number().int().min(1).default(3_000),
  RATE_LIMIT_USER_PER_MINUTE: z.coerce.number().int().min(1).default(1_200),
  MAX_BODY_BYTES: z.coerce.number().int().min(1_024).default(1_048_576),
  /** Where mail goes (smtp:// or smtps://, credentials in the URL); unset: the dev mailbox at /dev-mail. */
  SMTP_URL: z
    .url()
    .refine((u) => /^smtps?:\/\//i.test(u), 'expected an smtp:// or smtps:// URL')
    .optional(),
  /** The sender of every mail, e.g. `Workspace <no-reply@example.com>` (unset: no-reply@<BASE_DOMAIN>). */
  MAIL_FROM: optionalString,
  /**
   * The model server agents run on: OpenAI's (unset), or any OpenAI-compatible one (vLLM, Ollama, llama.cpp), ending
   * in /v1. Without it or OPENAI_API_KEY no model is configured, and a run fails saying so.
   */
  OPENAI_BASE_URL: optionalUrl,
  OPENAI_API_KEY: optionalString,
  /** Chat Completions (what every compatible server speaks) or OpenAI's Responses API. */
  LLM_API: z.enum(['chat', 'responses']).default('chat'),
  /** The model of an agent that names none. */
  AGENT_DEFAULT_MODEL: z.string().min(1).default('gpt-4.1-mini'),
  /** Model calls a run may make before it stops incomplete (max_steps). */
  AGENT_MAX_STEPS: z.coerce.number().int().min(1).max(200).default(25),
  /** Runs one agents process works on at once. */
  AGENT_CONCURRENCY: z.coerce.number().int().min(1).max(256).default(8),
  /** How long a worker holds a run without renewing: a worker that dies loses it this long after. */
  AGENT_LEASE_MS: z.coerce.number().int().min(1_000).max(600_000).default(30_000),
  /** The fallback poll for claimable runs, should a notification be missed. */
  AGENT_POLL_MS: z.coerce.number().int().min(100).max(600_000).default(5_000),
  /**
   * Where an agents worker apart from the API finds it (`http://api:3000`): it then claims and acts through
   * `/api/internal/*` with SERVICE_TOKEN, needing no database. Unset: the worker works beside the data, in process.
   */
  AGENTS_API_URL: z.url().optional(),
  /** The cheap model that routes a message naming no agent to one of the room's agents (unset: AGENT_DEFAULT_MODEL). */
  AGENT_ROUTER_MODEL: optionalString,
  /** The context window, in tokens, of a model neither in AGENT_MODEL_WINDOWS nor known (processors/agents/window.ts). */
  AGENT_CONTEXT_TOKENS: z.coerce.number().int().min(MIN_WINDOW).max(MAX_WINDOW).default(128_000),
  /** Models' context windows, e.g. `llama3.1=131072,qwen2.5=32768`: a name covers the models whose names start with it. */
  AGENT_MODEL_WINDOWS: modelWindows.default([]),
})

export type Config = Omit<z.infer<typeof schema>, 'DEV_IDP' | 'AGENT_ROUTER_MODEL'> & {
  readonly AGENT_ROUTER_MODEL: string
  /** Dev IdP mounted when OIDC_ISSUER is unset, and the X-Org/?org= stand-in for org hosts. */
  readonly DEV_IDP: boolean
}

export class ConfigError extends Error {
  override readonly name = 'ConfigError'
}

/** Parses the environment once. A bad value is reported with the variable's name. */
export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  const present = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ''))
  const parsed = schema.safeParse(present)
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `  ${i.path.join('.') || '(root)'}: ${i.message}`)
    throw new ConfigError(`invalid configuration:\n${lines.join('\n')}`)
  }
  const parsedConfig = parsed.data
  if (parsedConfig.EVENT_STORE === 'kurrentdb' && !parsedConfig.EVENTSTORE_URL) {
    throw new ConfigError('invalid configuration:\n  EVENTSTORE_URL: required when EVENT_STORE=kurrentdb')
  }
  if (Boolean(parsedConfig.OIDC_ISSUER) !== Boolean(parsedConfig.OIDC_CLIENT_ID)) {
    throw new ConfigError('invalid configuration:\n  OIDC_CLIENT_ID: OIDC_ISSUER and OIDC_CLIENT_ID go together')
  }
  if (parsedConfig.OIDC_ISSUER && !parsedConfig.OIDC_CLIENT_SECRET) {
    throw new ConfigError('invalid configuration:\n  OIDC_CLIENT_SECRET: required with OIDC_ISSUER')
  }
  const separate = [parsedConfig.CONTROL_DATABASE_URL, parsedConfig.TENANT_DATABASE_URL]
  if (!parsedConfig.DATABASE_URL && separate.some(Boolean) && !separate.every(Boolean)) {
    throw new ConfigError(
      'invalid configuration:\n  CONTROL_DATABASE_URL: CONTROL_DATABASE_URL and TENANT_DATABASE_URL go together, or DATABASE_URL names the database of the one unset',
    )
  }
  const production = parsedConfig.NODE_ENV === 'production'
  const origin = publicUrl(parsedConfig)
  const config: Config = {
    ...parsedConfig,
    AGENT_ROUTER_MODEL: parsedConfig.AGENT_ROUTER_MODEL ?? parsedConfig.AGENT_DEFAULT_MODEL,
    DEV_IDP:
      parsedConfig.DEV_IDP === undefined ? isLoopbackHost(new URL(origin).hostname) && !production : parsedConfig.DEV_IDP === '1',
  }
  const problems: string[] = []
  // Reachable from other machines, and not said to be a development or test run: what production needs.
  if (!isLoopbackHost(config.HOST) && config.NODE_ENV !== 'development' && config.NODE_ENV !== 'test') {
    const missing = [
      ...(config.OIDC_ISSUER ? [] : ['OIDC_ISSUER (a real OpenID Provider)']),
      ...(config.AUTH_SECRET_KEY ? [] : ['AUTH_SECRET_KEY (the same on every process)']),
      ...(origin.startsWith('https://') ? [] : [`an https PUBLIC_URL (now ${origin})`]),
    ]
    if (missing.length) {
      problems.push(
        `HOST: ${config.HOST} is not a loopback address and NODE_ENV is ${config.NODE_ENV ?? 'unset'} (not development or test): set ${missing.join(', ')}, or listen on 127.0.0.1`,
      )
    }
  }
  if (config.DEV_IDP && production) {
    problems.push('DEV_IDP: the dev IdP signs anyone in as any email and never runs with NODE_ENV=production')
  } else if (!config.OIDC_ISSUER && !config.DEV_IDP) {
    const why = production
      ? 'NODE_ENV=production'
      : parsedConfig.DEV_IDP === '0'
        ? 'DEV_IDP=0'
        : `PUBLIC_URL ${origin} is not loopback`
    problems.push(
      `OIDC_ISSUER: required, with OIDC_CLIENT_ID and OIDC_CLIENT_SECRET: the dev IdP, which signs anyone in as any email, is off (${why}); DEV_IDP=1 turns it on where only you can reach the server`,
    )
  }
  if (problems.length) throw new ConfigError(`invalid configuration:\n${problems.map((p) => `  ${p}`).join('\n')}`)
  return config
}

/** 127.0.0.0/8, ::1 (and ::ffff:127.x), localhost and *.localhost: names and addresses only this machine reaches. */
export function isLoopbackHost(host: string): boolean {
  const h = host
    .toLowerCase()
    .replace(/^\[(.*)\]$/, '$1')
    .replace(/\.$/, '')
  if (h === 'localhost' || h.endsWith('.localhost')) return true
  const v4 = isIP(h) === 4 ? h : /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(h)?.[1]
  if (v4 && isIP(v4) === 4) return v4.startsWith('127.')
  return isIP(h) === 6 && /^(0{0,4}:){1,7}0{0,3}1$|^::1$/.test(h)
}

export const publicUrl = (c: Pick<Config, 'PUBLIC_URL' | 'BASE_DOMAIN' | 'PORT'>): string =>
  c.PUBLIC_URL ?? `http://${c.BASE_DOMAIN}:${c.PORT}`
