import { pino, type DestinationStream, type Logger } from 'pino';

export type { Logger };

/**
 * JSON lines on stdout, written synchronously so nothing is lost at exit. Redaction is a safety net only: log calls never pass bodies or secrets,
 * and a test greps the output for a known secret.
 */
export function createLogger(level: string, destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: 'smarthost' },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: { paths: ['password', 'clientSecret', 'accessToken', '*.password', '*.clientSecret', '*.accessToken'], censor: '********' },
    },
    destination ?? pino.destination({ fd: 1, sync: true }),
  );
}
