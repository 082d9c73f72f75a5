import { z } from 'zod'

const roles = ['api', 'projector', 'realtime', 'processors'] as const
export type Role = (typeof roles)[number]

const optionalUrl = z.url().optional()
const optionalString = z.string().min(1).optional()

const schema = z.object({
  NODE_ENV: z.enum(['development', 'test', 'production']).default('development'),
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
  DATABASE_URL: optionalUrl,
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
  /** Bearer credential of services calling /api/internal/* (unset: those routes refuse everyone). */
  SERVICE_TOKEN: z.string().min(32).optional(),
  /** 32 bytes, base64 or hex: seals agent secrets and signs login cookies (unset: a key kept under DATA_DIR). */
  AUTH_SECRET_KEY: optionalString,
  CONSISTENCY_TIMEOUT_MS: z.coerce.number().int().min(0).max(60_000).default(5_000),
  SHUTDOWN_TIMEOUT_MS: z.coerce.number().int().min(0).max(120_000).default(10_000),
  REALTIME_HEARTBEAT_MS: z.coerce.number().int().min(100).max(120_000).default(50_000),
  REALTIME_QUEUE_TTL_MS: z.coerce.number().int().min(1_000).default(600_000),
  RATE_LIMIT_IP_PER_MINUTE: z.coerce.number().int().min(1).default(3_000),
  RATE_LIMIT_USER_PER_MINUTE: z.coerce.number().int().min(1).default(1_200),
  MAX_BODY_BYTES: z.coerce.number().int().min(1_024).default(1_048_576),
})

export type Config = z.infer<typeof schema>

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
  const config = parsed.data
  if (config.EVENT_STORE === 'kurrentdb' && !config.EVENTSTORE_URL) {
    throw new ConfigError('invalid configuration:\n  EVENTSTORE_URL: required when EVENT_STORE=kurrentdb')
  }
  if (Boolean(config.OIDC_ISSUER) !== Boolean(config.OIDC_CLIENT_ID)) {
    throw new ConfigError('invalid configuration:\n  OIDC_CLIENT_ID: OIDC_ISSUER and OIDC_CLIENT_ID go together')
  }
  if (config.OIDC_ISSUER && !config.OIDC_CLIENT_SECRET) {
    throw new ConfigError('invalid configuration:\n  OIDC_CLIENT_SECRET: required with OIDC_ISSUER')
  }
  return config
}

export const publicUrl = (c: Config): string => c.PUBLIC_URL ?? `http://${c.BASE_DOMAIN}:${c.PORT}`
