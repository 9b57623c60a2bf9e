/**
 * The cost of issue 17's matching, side by side in one run: `match_paths` in LangSmith's forms (prefix,
 * suffix, exact: string operations) against the same patterns read the old way (every pattern a regex),
 * and `match_headers` against the same rules without it, measured from the ext_proc message bytes (the
 * wire reader, the policy request and the decision) so the lazy decode of the header map is counted.
 */
import { compilePolicy } from '../src/config/compile.js';
import { validateConfig } from '../src/config/load.js';
import type { CompiledPolicy, CompiledRule } from '../src/policy/compiled.js';
import { decide } from '../src/policy/decide.js';
import type { PathPattern } from '../src/policy/path-pattern.js';
import { readRequest } from '../src/extproc/wire.js';
import { wirePolicyRequest } from '../src/extproc/translate.js';
import { ProcessingRequest } from '../src/gen/envoy/service/ext_proc/v3/external_processor.js';
import { fmt, percentile, table } from './stats.js';

const ACCOUNTS = 8;
const SDK_HEADERS: Array<[string, string]> = [
  ['user-agent', 'OpenAI/Python 1.82.0'],
  ['accept', 'application/json'],
  ['content-type', 'application/json'],
  ['x-stainless-lang', 'python'],
  ['x-stainless-package-version', '1.82.0'],
  ['x-stainless-os', 'Linux'],
  ['x-stainless-arch', 'x64'],
  ['x-stainless-runtime', 'CPython'],
  ['x-stainless-runtime-version', '3.12.3'],
  ['x-stainless-retry-count', '0'],
  ['accept-encoding', 'gzip, deflate'],
  ['x-request-id', 'req_0123456789abcdef'],
];

function policy(withHeaders: boolean): CompiledPolicy {
  const rules = Array.from({ length: ACCOUNTS }, (_, i) => ({
    name: `account-${i}`,
    match_hosts: ['api.example.com'],
    match_paths: ['/v1/*', '*/completions', '/health'],
    ...(withHeaders ? { match_headers: [`authorization: Bearer account-${i}`] } : {}),
    headers: [{ name: 'Authorization', type: 'plaintext', value: `Bearer real-${i}` }],
  }));
  return compilePolicy(validateConfig({ rules }, 'bench'), { secrets: new Map(), unsealer: undefined });
}

/** One request_headers message as Envoy sends it: pseudo-headers, an SDK's headers and the placeholder. */
function message(account: number, path: string): Buffer {
  const header = (key: string, value: string) => ({ key, value: '', rawValue: Buffer.from(value) });
  const headers = [
    header(':authority', 'api.example.com'),
    header(':path', path),
    header(':method', 'POST'),
    header(':scheme', 'https'),
    ...SDK_HEADERS.map(([k, v]) => header(k, v)),
    header('authorization', `Bearer account-${account}`),
  ];
  const m = {
    request: { $case: 'requestHeaders', value: { headers: { headers }, attributes: {}, endOfStream: false } },
    metadataContext: undefined,
    attributes: {},
    observabilityMode: false,
    protocolConfig: undefined,
  } as ProcessingRequest;
  return Buffer.from(ProcessingRequest.encode(m).finish());
}

/** The "before" for paths: each pattern as the old glob (a regex over the whole path, `*` = `.*`). */
function oldStyle(p: CompiledPolicy): CompiledPolicy {
  const regexOf = (pattern: string) =>
    new RegExp(
      `^${pattern
        .split('')
        .map((c) => (c === '*' ? '.*' : c === '?' ? '.' : c.replace(/[.+^${}()|[\]\\/-]/g, '\\$&')))
        .join('')}$`,
      's',
    );
  const rules = p.rules.map(
    (r): CompiledRule => ({
      ...r,
      paths: r.paths.map(
        (x): PathPattern => ({
          ...x,
          test: (
            (re) => (path: string) =>
              re.test(path)
          )(regexOf(x.pattern)),
        }),
      ),
    }),
  );
  return { ...p, rules };
}

function measure(fn: (i: number) => unknown, iterations: number) {
  for (let i = 0; i < 20_000; i++) fn(i);
  const samples = new Float64Array(iterations);
  for (let i = 0; i < iterations; i++) {
    const t0 = process.hrtime.bigint();
    fn(i);
    samples[i] = Number(process.hrtime.bigint() - t0);
  }
  const t1 = process.hrtime.bigint();
  for (let i = 0; i < iterations; i++) fn(i);
  const bareNs = Number(process.hrtime.bigint() - t1);
  samples.sort();
  return { perSec: iterations / (bareNs / 1e9), p50: percentile(samples, 50), p99: percentile(samples, 99) };
}

/** `npm run bench -- matching`. */
export function runMatchingBench(): string {
  const paths = ['/v1/chat/completions', '/v2/chat/completions', '/health', '/v10/models'];
  const messages = Array.from({ length: 64 }, (_, k) => message(k % ACCOUNTS, paths[k % paths.length]!));
  const plain = policy(false);
  const keyed = policy(true);
  const old = oldStyle(plain);
  const run = (p: CompiledPolicy) => (i: number) => {
    const wire = readRequest(messages[i & 63]!);
    return decide(p, wirePolicyRequest(wire, false)!);
  };
  const rows: Array<Array<string | number>> = [];
  const add = (label: string, m: ReturnType<typeof measure>, base?: ReturnType<typeof measure>) =>
    rows.push([
      label,
      fmt(m.perSec),
      fmt(m.p50 / 1000, 2),
      fmt(m.p99 / 1000, 2),
      base ? `${fmt(base.perSec / m.perSec, 2)}x` : '',
    ]);
  // Interleaved rounds, best of three for each, so a busy moment hits all setups alike.
  const best = (a: ReturnType<typeof measure>[]) => a.reduce((x, y) => (y.perSec > x.perSec ? y : x));
  const r = {
    old: [] as ReturnType<typeof measure>[],
    plain: [] as ReturnType<typeof measure>[],
    keyed: [] as ReturnType<typeof measure>[],
  };
  for (let round = 0; round < 3; round++) {
    r.old.push(measure(run(old), 200_000));
    r.plain.push(measure(run(plain), 200_000));
    r.keyed.push(measure(run(keyed), 200_000));
  }
  const o = best(r.old);
  const p = best(r.plain);
  add('before: paths as regexes (old glob), no match_headers', o);
  add('LangSmith path forms, no match_headers', p, o);
  add(
    `LangSmith path forms + match_headers (${ACCOUNTS} accounts; the header read from the message bytes)`,
    best(r.keyed),
    p,
  );
  return table(
    `Decision from ext_proc bytes: wire read + policy request + decide (${ACCOUNTS} rules on one host, 3 patterns each, ${SDK_HEADERS.length + 5} headers)`,
    ['setup', 'decisions/s', 'p50 µs', 'p99 µs', 'cost vs row above'],
    rows,
  );
}
