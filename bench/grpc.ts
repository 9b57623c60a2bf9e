/**
 * ext_proc cost per stream, from a separate process: the Go load generator (bench/loadgen) opens one
 * bidi stream per request over one HTTP/2 connection on a Unix socket, as Envoy's inner (inject) filter
 * does, with an SDK-like header set and the tunnel attributes; authproxy (a static rule), the null
 * grpc-js server and the null Go server (bench/baselines) take turns, rounds interleaved and their order
 * rotated: closed loops at 1 and 32 in flight, and an open loop at a fixed rate (latency from the
 * scheduled send time). Each figure is the median over the rounds; CPU is the server process's
 * utime+stime from /proc/PID/stat over the measured window, per stream.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import {
  buildGo,
  loadgen,
  staleBuildNote,
  startAuthproxy,
  startNullGo,
  startNullGrpcJs,
  summarize,
  type LoadResult,
  type Server,
} from './procs.js';
import { fmt, ratio, table } from './stats.js';

const CONFIG = `
rules:
  - name: github-api
    match_hosts: ["api.github.com"]
    match_paths: ["/repos/*", "/user"]
    headers: [{ name: Authorization, type: plaintext, value: "Bearer bench" }]
  - name: wildcard
    match_hosts: ["*.example.com"]
    headers: [{ name: X-Api-Key, type: plaintext, value: "bench" }]
`;

/** Closed-loop rounds × in-flight levels × seconds, open-loop slices × seconds: ≈ 2.5 min in all. */
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const IN_FLIGHT = [1, 32];
const SECONDS = Number(process.env.BENCH_SECONDS ?? 4);
const OPEN = { rate: Number(process.env.BENCH_RATE ?? 500), slices: Number(process.env.BENCH_SLICES ?? 5), seconds: 3 };

/** The comparison table of `npm run bench -- grpc`. */
export async function runGrpcBench(): Promise<string> {
  const why = buildGo();
  if (why) return `\next_proc benchmark skipped: ${why}`;
  const dir = mkdtempSync(join(tmpdir(), 'authproxy-bench-'));
  const config = join(dir, 'config.yaml');
  writeFileSync(config, CONFIG);
  const servers: Server[] = [];
  try {
    servers.push(await startAuthproxy(config, join(dir, 'authproxy.sock')));
    servers.push(await startNullGrpcJs(join(dir, 'null-grpcjs.sock')));
    servers.push(await startNullGo(join(dir, 'null-go.sock')));
    const runs = new Map<string, LoadResult[]>();
    const record = (key: string, r: LoadResult) => runs.set(key, [...(runs.get(key) ?? []), r]);
    const loads = [...IN_FLIGHT.map(String), 'open'];
    for (let round = 0; round < Math.max(ROUNDS, OPEN.slices); round++) {
      for (let k = 0; k < servers.length; k++) {
        const s = servers[(round + k) % servers.length]!;
        const base = ['-target', s.address, '-pid', String(s.pid)];
        if (round < ROUNDS)
          for (const c of IN_FLIGHT)
            record(`${s.name}/${c}`, await loadgen([...base, '-c', String(c), '-d', `${SECONDS}s`], `${s.name} ${c}`));
        if (round < OPEN.slices)
          record(
            `${s.name}/open`,
            await loadgen(
              [...base, '-rate', String(OPEN.rate), '-d', `${OPEN.seconds}s`, '-warmup', '0.3s'],
              `${s.name} open`,
            ),
          );
      }
    }
    const rows: Array<Array<string | number>> = [];
    for (const load of loads) {
      const [ap, js, go] = servers.map((s) => summarize(runs.get(`${s.name}/${load}`)!));
      const closed = load !== 'open';
      for (const [s, m] of servers.map((s, i) => [s, [ap, js, go][i]!] as const)) {
        const isAp = s.name === 'authproxy';
        const isGo = s.name === 'null Go';
        rows.push([
          s.name,
          closed ? `${load} in flight` : `${OPEN.rate}/s open`,
          fmt(m.perS),
          fmt(m.p50),
          fmt(m.p99),
          fmt(m.p999),
          fmt(m.cpu),
          m.errors,
          isAp ? ratio(m.cpu, js!.cpu) : '',
          isGo ? '' : ratio(m.cpu, go!.cpu),
          isAp && closed ? ratio(m.perS, js!.perS) : '',
          !isGo && closed ? ratio(m.perS, go!.perS) : '',
        ]);
      }
    }
    return (
      table(
        `ext_proc streams from a separate Go load generator, one HTTP/2 connection on a Unix socket (closed loop: median of ${ROUNDS} interleaved rounds × ${SECONDS} s; open loop: median of ${OPEN.slices} slices × ${OPEN.seconds} s, latency from the scheduled send; loader and server share the cores)`,
        [
          'target',
          'load',
          'streams/s',
          'p50 µs',
          'p99 µs',
          'p99.9 µs',
          'CPU µs/stream',
          'errors',
          'CPU vs grpc-js',
          'CPU vs Go',
          'streams/s vs grpc-js',
          'streams/s vs Go',
        ],
        rows,
      ) + staleBuildNote()
    );
  } finally {
    for (const s of servers) await s.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
