import { pino, type DestinationStream, type Logger, type LevelWithSilent } from 'pino';

export type { Logger };

/**
 * Paths pino censors even if a value slips into a log object by mistake. The code never logs header
 * values; this is the second line of defence, and the canary test checks the first.
 */
export const REDACT_PATHS = [
  'value', '*.value', '*.*.value', 'headers', '*.headers', 'request_headers', '*.request_headers',
  'authorization', '*.authorization', 'Authorization', '*.Authorization', '["proxy-authorization"]', '*["proxy-authorization"]',
  'cookie', '*.cookie', 'secret', '*.secret', 'token', '*.token', 'password', '*.password', 'privateKeyPem', '*.privateKeyPem',
];

/** The process logger: JSON lines, redaction on. `destination` lets tests capture output. */
export function createLogger(level: LevelWithSilent = 'info', destination?: DestinationStream): Logger {
  const options = { level, base: { service: 'authproxy' }, redact: { paths: REDACT_PATHS, censor: '[redacted]' } };
  return destination ? pino(options, destination) : pino(options);
}
