import { pino } from 'pino'

export type Logger = pino.Logger

export const createLogger = (
  level: string,
  bindings: Record<string, unknown> = {},
  /** Where lines go (default stdout): tests pass a stream to inspect them. */
  destination?: pino.DestinationStream,
): Logger => {
  const options: pino.LoggerOptions = {
    level,
    base: { service: 'workspace', ...bindings },
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: {
      paths: ['req.headers.authorization', 'req.headers.cookie', '*.token', '*.secret', '*.password'],
      censor: '[redacted]',
    },
  }
  return destination ? pino(options, destination) : pino(options)
}
