import { pino } from 'pino'

export type Logger = pino.Logger

export const createLogger = (level: string, bindings: Record<string, unknown> = {}): Logger =>
  pino({
    level,
    base: { service: 'workspace', ...bindings },
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: {
      paths: ['req.headers.authorization', 'req.headers.cookie', '*.token', '*.secret', '*.password'],
      censor: '[redacted]',
    },
  })
