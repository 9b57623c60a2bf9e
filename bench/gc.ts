/**
 * Garbage-collection pauses on the request path: authproxy through a real Envoy sidecar at a fixed 500 req/s
 * (the Envoy benchmark's open loop), once with Node's default young generation and once with the flags the
 * Docker image runs it with, each under `--trace-gc`. Prints the request latency beside the collector's own
 * pause figures (count, mean and longest scavenge; mark-compacts; heap after a full collection), so that a
 * tail can be told apart from a pause: a p99 that follows the longest scavenge is the collector's.
 */
import { envoyBinary } from '../test/helpers/envoy.js';
import { DEPLOYED_NODE_ARGS, buildGo, loadgen, median } from './procs.js';
import { fmt, table } from './stats.js';
import { authproxyWith, httpsThrough, openLoop, startBenchRig } from './envoy.js';

const SLICES = Number(process.env.BENCH_GC_SLICES ?? 4);

/** The pauses in `--trace-gc` output: `Scavenge` / `Mark-Compact` lines, the main-thread pause in ms. */
export function gcPauses(output: string): {
  scavenges: number[];
  markCompacts: number[];
  heapAfterMarkCompactMb: number[];
} {
  const scavenges: number[] = [];
  const markCompacts: number[] = [];
  const heapAfterMarkCompactMb: number[] = [];
  for (const line of output.split('\n')) {
    const m = /(Scavenge|Mark-Compact)\b.*?-> ([\d.]+) \([\d.]+\) MB, .*?([\d.]+) \/ [\d.]+ ms/.exec(line);
    if (!m) continue;
    if (m[1] === 'Scavenge') scavenges.push(Number(m[3]));
    else {
      markCompacts.push(Number(m[3]));
      heapAfterMarkCompactMb.push(Number(m[2]));
    }
  }
  return { scavenges, markCompacts, heapAfterMarkCompactMb };
}

/** `npm run bench -- gc`: one row per young-generation setting. */
export async function runGcBench(): Promise<string> {
  if (!envoyBinary()) return '\nGC benchmark skipped: no Envoy binary (bash scripts/setup-deps.sh installs it)';
  const why = buildGo();
  if (why) return `\nGC benchmark skipped: ${why}`;
  const settings: Array<[string, string[]]> = [
    ['node defaults', []],
    [`as deployed (${DEPLOYED_NODE_ARGS.join(' ') || 'no flags'})`, [...DEPLOYED_NODE_ARGS]],
  ];
  const rows: Array<Array<string | number>> = [];
  for (const [label, flags] of settings) {
    const rig = await startBenchRig();
    try {
      const { restarted: server } = await authproxyWith(rig, ['--trace-gc', ...flags]);
      if (!server) throw new Error('bench gc: the rig has no authproxy to restart');
      try {
        const mark = server.output().length;
        const runs = [];
        for (let i = 0; i < SLICES; i++)
          runs.push(await loadgen([...httpsThrough(rig, [server.pid]), ...openLoop(500, 4)], `gc ${label}`));
        const gc = gcPauses(server.output().slice(mark));
        const mean = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : 0);
        rows.push([
          label,
          fmt(median(runs.map((r) => r.p50_us)) / 1000, 2),
          fmt(median(runs.map((r) => r.p99_us)) / 1000, 2),
          fmt(median(runs.map((r) => r.cpu_us_per_op![0]!))),
          gc.scavenges.length,
          fmt(mean(gc.scavenges), 1),
          fmt(Math.max(0, ...gc.scavenges), 1),
          gc.markCompacts.map((p) => fmt(p, 1)).join(' / ') || '-',
          gc.heapAfterMarkCompactMb.map((p) => fmt(p, 1)).join(' / ') || '-',
          fmt(gc.scavenges.reduce((a, b) => a + b, 0) + gc.markCompacts.reduce((a, b) => a + b, 0)),
        ]);
      } finally {
        await server.stop();
      }
    } finally {
      await rig.stop();
    }
  }
  return table(
    `Garbage collection on the request path: authproxy through Envoy at 500 req/s, ${SLICES} × 4 s, --trace-gc (latency: median of the slices; pauses: all slices)`,
    [
      'authproxy',
      'p50 ms',
      'p99 ms',
      'CPU µs/req',
      'scavenges',
      'mean pause ms',
      'longest ms',
      'mark-compact pauses ms',
      'heap after mark-compact MB',
      'GC pauses total ms',
    ],
    rows,
  );
}
