/** Captures pino output in memory so tests can search every log line. */
import { Writable } from 'node:stream';
import { createLogger, type Logger } from '../../src/log.js';

export function captureLogs(level: 'debug' | 'info' = 'debug'): {
  log: Logger;
  text: () => string;
  lines: () => Record<string, unknown>[];
} {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk, _enc, cb) {
      chunks.push(chunk.toString());
      cb();
    },
  });
  const log = createLogger(level, stream);
  return {
    log,
    text: () => chunks.join(''),
    lines: () =>
      chunks
        .join('')
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}
