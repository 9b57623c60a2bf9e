import { pino, type DestinationStream, type Logger, type LevelWithSilent } from 'pino';
import pinoPretty from 'pino-pretty';

export type { Logger };

/**
 * Paths pino censors even if a value slips into a log object by mistake. The code never logs header
 * values; this is the second line of defence, and the canary test checks the first.
 */
export const REDACT_PATHS = [
  'value',
  '*.value',
  '*.*.value',
  'headers',
  '*.headers',
  'request_headers',
  '*.request_headers',
  'authorization',
  '*.authorization',
  'Authorization',
  '*.Authorization',
  '["proxy-authorization"]',
  '*["proxy-authorization"]',
  'cookie',
  '*.cookie',
  'secret',
  '*.secret',
  'token',
  '*.token',
  'password',
  '*.password',
  'privateKeyPem',
  '*.privateKeyPem',
];

/** `--log-format`: pino JSON lines (the default, for log pipelines) or pino-pretty's lines for a terminal. */
export const LOG_FORMATS = ['json', 'pretty'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

/**
 * The process logger: JSON lines, redaction on. `destination` lets tests capture output. `pretty` formats
 * each line with pino's own pretty printer, synchronously, after pino has serialized and redacted it: the
 * same censored fields, only laid out for a human (colours when stdout is a terminal).
 */
export function createLogger(
  level: LevelWithSilent = 'info',
  destination?: DestinationStream,
  format: LogFormat = 'json',
): Logger {
  const options = { level, base: { service: 'authproxy' }, redact: { paths: REDACT_PATHS, censor: '[redacted]' } };
  if (format === 'pretty') {
    const pretty = pinoPretty({
      sync: true,
      destination: destination ?? 1,
      colorize: Boolean(((destination ?? process.stdout) as { isTTY?: boolean }).isTTY),
      translateTime: 'SYS:HH:MM:ss.l',
      ignore: 'pid,hostname,service',
    });
    return pino(options, pretty);
  }
  return destination ? pino(options, destination) : pino(options);
}
