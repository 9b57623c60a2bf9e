/**
 * Shared settings of the fuzzers in test/fuzz/: how many cases each runs, which seed it uses, and the one
 * line each prints so that a failure can be replayed.
 *
 * - `FUZZ_RUNS` multiplies every fuzzer's base count (default 1, as in `npm test`; `npm run fuzz` uses 20).
 * - `FUZZ_SEED` fixes the seed (an integer); without it a random one is drawn per process and printed.
 *   Every fuzzer of a file uses the same seed, so `FUZZ_SEED=<seed> FUZZ_RUNS=<runs> npx vitest run
 *   test/fuzz/<file>` replays a printed run case for case.
 */
import { runInNewContext } from 'node:vm';
import { setFlagsFromString } from 'node:v8';
import { Writable } from 'node:stream';
import fc from 'fast-check';
import { createLogger, type Logger } from '../../src/log.js';

function envNumber(name: string): number | undefined {
  const raw = process.env[name];
  if (raw === undefined || raw.trim() === '') return undefined;
  const n = Number(raw);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`${name} must be a positive number, got ${JSON.stringify(raw)}`);
  return n;
}

/** The multiplier of every base count. */
export const FUZZ_SCALE = envNumber('FUZZ_RUNS') ?? 1;
/** The seed of this process's fuzzers (fast-check takes a 32-bit integer). */
export const FUZZ_SEED = Math.trunc(envNumber('FUZZ_SEED') ?? 1 + Math.floor(Math.random() * 0x7fff_fffe)) | 0;

/** `base` scaled by FUZZ_RUNS (at least 1). */
export function runs(base: number): number {
  return Math.max(1, Math.round(base * FUZZ_SCALE));
}

/** A vitest timeout for a fuzzer whose base count takes about `baseMs`: scaled, with a generous floor. */
export function fuzzTimeout(baseMs: number): number {
  return Math.max(20_000, Math.round(baseMs * FUZZ_SCALE * 3));
}

/** The one line a fuzzer prints: name, cases run, seed, and how to replay. */
export function report(name: string, cases: number, seed = FUZZ_SEED): void {
  console.log(`[fuzz] ${name}: ${cases} cases, seed ${seed} (replay: FUZZ_SEED=${seed} FUZZ_RUNS=${FUZZ_SCALE})`);
}

/** Runs a fast-check property with the shared seed and `runs(base)` cases, prints the report line, throws on a counterexample. */
export async function fuzz<T>(
  name: string,
  base: number,
  property: fc.IProperty<T> | fc.IAsyncProperty<T>,
  extra: Partial<fc.Parameters<T>> = {},
): Promise<number> {
  const numRuns = runs(base);
  const details = await fc.check(property as fc.IAsyncProperty<T>, {
    seed: FUZZ_SEED,
    numRuns,
    includeErrorInReport: true,
    ...extra,
  });
  report(name, details.numRuns, details.seed);
  if (details.failed) throw new Error(`${name}: ${fc.defaultReportMessage(details) ?? 'failed'}`);
  return details.numRuns;
}

let gcFn: (() => void) | undefined;
/** Runs a full garbage collection (without --expose-gc on the command line) and returns heapUsed after it. */
export function heapAfterGc(): number {
  if (!gcFn) {
    setFlagsFromString('--expose-gc');
    gcFn = runInNewContext('gc') as () => void;
  }
  gcFn();
  gcFn();
  return process.memoryUsage().heapUsed;
}

/** Strings no fuzzer-generated value contains, so that they mark where a planted value went. */
export const CANARY_MARK = 'cnry';

/** Interesting strings for any text field: empty, spaces, control characters, separators, huge, look-alikes. */
export const NASTY_STRINGS: readonly string[] = [
  '',
  ' ',
  '\t',
  '\n',
  '\r\n',
  '\u0000',
  '\u007f',
  '\u00ff',
  '\u2028',
  '\ufeff',
  '\ud800',
  '\udc00x',
  '\u212aey',
  '*',
  '**',
  '*.',
  '*.com',
  '*.co.uk',
  '.',
  '..',
  '/',
  '//',
  '/..',
  '%',
  '%00',
  '%2e%2e',
  '%2f',
  '\\',
  ';',
  '?',
  '#',
  '@',
  ':',
  '::',
  '[',
  ']',
  '[::1]',
  '{',
  '}',
  '{X}',
  '{{X}}',
  // biome-ignore lint/suspicious/noTemplateCurlyInString: a literal ${X} is one of the hostile inputs
  '${X}',
  '~',
  '~(',
  '~.*',
  'a'.repeat(300),
  'x'.repeat(9000),
  'api.example.com',
  'API.EXAMPLE.COM.',
  'a.b.example.com:443',
  'user:pw@api.example.com',
  'http://x',
  'https://u:p@x/',
  'ftp://x',
  '127.0.0.1',
  '10.0.0.0/8',
  '::ffff:127.0.0.1',
  '0x7f.1',
  '2130706433',
  'sealed:',
  'sealed:AAAA',
  'opaque',
  'plaintext',
  'workspace_secret',
  'aws',
  'gcp',
  '__proto__',
  'constructor',
  'prototype',
  'toString',
  'hasOwnProperty',
  'true',
  'null',
  '-1',
  '1e309',
  'NaN',
];

/** A fast-check arbitrary of hostile strings: the list above, random unicode and random ASCII. */
export const hostileString: fc.Arbitrary<string> = fc
  .oneof(
    { weight: 3, arbitrary: fc.constantFrom(...NASTY_STRINGS) },
    { weight: 2, arbitrary: fc.string({ maxLength: 40 }) },
    { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 20 }) },
    {
      weight: 1,
      arbitrary: fc.tuple(fc.constantFrom(...NASTY_STRINGS), fc.constantFrom(...NASTY_STRINGS)).map(([a, b]) => a + b),
    },
  )
  .filter((s) => !s.toLowerCase().includes(CANARY_MARK));

/** Any JSON-like value with hostile strings, for replacing a field. */
export const hostileValue: fc.Arbitrary<unknown> = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    hostileString,
    fc.integer(),
    fc.double(),
    fc.boolean(),
    fc.constant(null),
    fc.array(tie('value'), { maxLength: 4 }),
    fc.dictionary(hostileString, tie('value'), { maxKeys: 4 }),
  ),
})).value;

/**
 * A logger for long fuzz runs that keeps no lines (a capture that keeps them all would itself grow the
 * heap): it counts lines and the lines that contain any of `secrets`.
 */
export function scanningLogger(
  secrets: readonly string[],
  level: 'debug' | 'info' = 'info',
): { log: Logger; lines: () => number; leaks: () => number } {
  let lines = 0;
  let leaks = 0;
  const stream = new Writable({
    write(chunk, _enc, cb) {
      const text = chunk.toString();
      lines += 1;
      if (secrets.some((s) => text.includes(s))) leaks += 1;
      cb();
    },
  });
  return { log: createLogger(level, stream), lines: () => lines, leaks: () => leaks };
}

/** A string as UTF-8 carries it: lone surrogates become U+FFFD (String.prototype.toWellFormed, ES2024). */
export function wellFormed(s: string): string {
  return Buffer.from(s, 'utf8').toString('utf8');
}
