/**
 * `npm run soak`: 10 minutes (SOAK_SECONDS) at 500 requests/s (SOAK_RATE) through Envoy + authproxy with
 * Redis, a static rule and a callback host (60 s TTL). Prints a table per minute and per 10 s sample, and
 * the RSS growth from minute 2 to the end (goal: under 10 %), and exits non-zero if a request failed or got
 * a wrong credential. Its CI variant, 60 s in `npm test`, is soak.test.ts beside it.
 */
import { runSoak } from './runner.js';
import { fmt, table } from '../helpers/table.js';

const seconds = Number(process.env.SOAK_SECONDS ?? 600);
const rate = Number(process.env.SOAK_RATE ?? 500);
console.log(`soak: ${seconds} s at ${rate} req/s through the real sidecar (node ${process.version})`);
const mib = (b: number) => fmt(b / 1048576, 1);
const r = await runSoak(seconds, rate, (s) =>
  console.log(
    `  t=${s.second}s rss=${mib(s.rssBytes)} MiB heap=${mib(s.heapUsedBytes)} MiB loop p99=${fmt(s.eventLoopP99Ms, 1)} ms handles=${s.handles} ext_proc streams=${s.extProcStreams} resets=${s.extProcResets}`,
  ),
);
console.log(
  table(
    'Per minute (latency from the scheduled send time)',
    ['minute', 'requests', 'p50 ms', 'p99 ms'],
    r.minutes.map(([n, p50, p99], i) => [i + 1, fmt(n), fmt(p50, 2), fmt(p99, 2)]),
  ),
);
const from = r.samples.find((s) => s.second >= 120) ?? r.samples[0]!;
const to = r.samples[r.samples.length - 1]!;
console.log(
  `\nsent ${fmt(r.sent)}, ok ${fmt(r.ok)}, errors ${r.errors} ${JSON.stringify(r.errorKinds)}, wrong credential ${r.wrongCredential}`,
);
console.log(
  `RSS ${mib(from.rssBytes)} MiB at ${from.second} s -> ${mib(to.rssBytes)} MiB at ${to.second} s: ${fmt(((to.rssBytes - from.rssBytes) / from.rssBytes) * 100, 1)} % (goal < 10 %)`,
);
console.log(
  `heap ${mib(from.heapUsedBytes)} -> ${mib(to.heapUsedBytes)} MiB; handles ${from.handles} -> ${to.handles}; Envoy ext_proc resets ${to.extProcResets}`,
);
if (r.errors)
  console.log(
    `failed requests (s from start, kind): ${r.errorTimes
      .slice(0, 40)
      .map(([t, k]) => `${t}:${k}`)
      .join(' ')}`,
  );
console.log(
  `\nEnvoy failed-request log lines and warnings (${r.diagnostics.accessLog.length}):\n${r.diagnostics.accessLog.join('\n')}`,
);
console.log(`\nEnvoy failure counters (non-zero):\n${r.diagnostics.envoyStats.join('\n')}`);
console.log(
  `\nauthproxy warnings (${r.diagnostics.authproxyWarnings.length}):\n${r.diagnostics.authproxyWarnings.join('\n')}`,
);
process.exit(r.errors === 0 && r.wrongCredential === 0 ? 0 : 1);
