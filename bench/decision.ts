/**
 * Benchmark of the pure decision: decisions per second and p50/p99 per decision for 10, 1,000 and
 * 10,000 rules (mixed exact and wildcard hosts, with paths), against a linear scan of the same rules as
 * the "before" figure that the compiled host index replaces.
 */
import { compilePolicy } from '../src/config/compile.js';
import { validateConfig } from '../src/config/load.js';
import type { CompiledPolicy } from '../src/policy/compiled.js';
import { decide, pathMatches, type PolicyRequest } from '../src/policy/decide.js';
import { normaliseAuthority } from '../src/policy/host.js';
import { normalisePath } from '../src/policy/path.js';
import { fmt, percentile, table } from './stats.js';

function config(n: number) {
  const rules = Array.from({ length: n }, (_, i) => ({
    name: `rule-${i}`,
    match_hosts: i % 3 === 0 ? [`*.team${i}.example.net`] : [`api${i}.example${i % 97}.com`],
    match_paths: i % 2 === 0 ? ['/v1/*', '/items/?'] : [],
    headers: [{ name: 'Authorization', type: 'plaintext', value: `Bearer t${i}` }],
  }));
  return compilePolicy(validateConfig({ rules }, 'bench'), { secrets: new Map(), unsealer: undefined });
}

function requests(n: number, count: number): PolicyRequest[] {
  return Array.from({ length: count }, (_, k) => {
    const i = (k * 7919) % n;
    const miss = k % 10 === 9;
    const host = miss
      ? `unknown${k}.example.org`
      : i % 3 === 0
        ? `a.b.team${i}.example.net`
        : `api${i}.example${i % 97}.com`;
    return {
      method: 'GET',
      scheme: 'https',
      authority: `${host}:443`,
      path: k % 4 === 0 ? '/v1/chat/completions?x=1' : '/items/7',
    };
  });
}

/** The "before": every rule checked in order, as a decision would without the index. */
function linearDecide(policy: CompiledPolicy, req: PolicyRequest): string | undefined {
  const target = normaliseAuthority(req.authority, req.scheme);
  const path = normalisePath(req.path);
  if (!target || path === undefined) return undefined;
  for (const rule of policy.rules) {
    const patterns = policy.source.rules[rule.position]!.match_hosts ?? [];
    const hostOk = patterns.some((p) => (p.startsWith('*.') ? target.host.endsWith(p.slice(1)) : p === target.host));
    if (hostOk && pathMatches(rule, path)) return rule.name;
  }
  return undefined;
}

function measure(fn: (req: PolicyRequest) => unknown, reqs: PolicyRequest[], iterations: number) {
  for (let i = 0; i < Math.min(iterations, 20_000); i++) fn(reqs[i % reqs.length]!);
  const samples = new Float64Array(iterations);
  const start = process.hrtime.bigint();
  for (let i = 0; i < iterations; i++) {
    const t0 = process.hrtime.bigint();
    fn(reqs[i % reqs.length]!);
    samples[i] = Number(process.hrtime.bigint() - t0);
  }
  const totalNs = Number(process.hrtime.bigint() - start);
  // Throughput without the per-call clock reads:
  const t1 = process.hrtime.bigint();
  for (let i = 0; i < iterations; i++) fn(reqs[i % reqs.length]!);
  const bareNs = Number(process.hrtime.bigint() - t1);
  samples.sort();
  return { perSec: iterations / (bareNs / 1e9), p50: percentile(samples, 50), p99: percentile(samples, 99), totalNs };
}

export function runDecisionBench(): string {
  const rows: Array<Array<string | number>> = [];
  for (const n of [10, 1_000, 10_000]) {
    const policy = config(n);
    const reqs = requests(n, 4096);
    const indexed = measure((r) => decide(policy, r), reqs, 200_000);
    const linear = measure((r) => linearDecide(policy, r), reqs, n >= 10_000 ? 5_000 : 50_000);
    rows.push([
      fmt(n),
      fmt(indexed.perSec),
      fmt(indexed.p50 / 1000, 2),
      fmt(indexed.p99 / 1000, 2),
      fmt(linear.perSec),
      fmt(linear.p99 / 1000, 2),
    ]);
  }
  return table(
    'Pure decision (compiled index) vs linear scan of the same rules',
    ['rules', 'decisions/s', 'p50 µs', 'p99 µs', 'linear decisions/s', 'linear p99 µs'],
    rows,
  );
}
