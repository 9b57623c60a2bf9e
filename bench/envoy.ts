/**
 * HTTPS through a real Envoy sidecar (one worker), driven by the Go load generator from a separate
 * process: CONNECT through the forward proxy, TLS intercepted, HTTP/1.1 keep-alive to a loopback
 * upstream. Four sidecars run side by side and take turns, rounds interleaved and their order rotated:
 * Envoy alone (the inner ext_proc filter removed; the CONNECT decision and interception stay), Envoy with
 * its ext_proc filters pointed at the null Go server, at the null grpc-js server (bench/baselines), and
 * Envoy + authproxy as deployed. Each runs a closed loop (8 connections) in 3 rounds and a fixed-rate
 * open loop (latency from the scheduled send time) in 9 short slices. Figures are medians over the rounds
 * (slices): on this shared machine one slice in several catches a stall of the whole VM, which a pooled
 * p99 would blame on whichever setup ran then. "Added" latency is the median of the per-slice
 * differences against Envoy alone in the same slice. "Loader late" is how late the load generator itself
 * started requests (p99): when it is more than a millisecond or two, the machine was busy with other work.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { parse, stringify } from 'yaml';
import { envoyBinary } from '../test/helpers/envoy.js';
import { startRig, type Rig } from '../test/helpers/sidecar-rig.js';
import {
  AUTHPROXY_NODE_ARGS,
  buildGo,
  findPid,
  loadgen,
  median,
  relaunch,
  staleBuildNote,
  startNullGo,
  startNullGrpcJs,
  type LoadResult,
  type Server,
} from './procs.js';
import { fmt, table } from './stats.js';
import { PICKED_HEADERS } from '../src/extproc/wire.js';
import { adminPortOf, failureStats } from '../test/helpers/chaos-envoy-log.js';

/** The sidecar's config in every Envoy benchmark: one static rule for the upstream's host. */
export const CONFIG = `
rules:
  - name: github-api
    match_hosts: ["api.github.com"]
    headers: [{ name: Authorization, type: workspace_secret, value: "Bearer {TOKEN}" }]
`;

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const CLOSED = { conns: 8, seconds: Number(process.env.BENCH_SECONDS ?? 3) };
const OPEN = {
  rate: Number(process.env.BENCH_RATE ?? 500),
  seconds: Number(process.env.BENCH_OPEN_SECONDS ?? 4),
  slices: Number(process.env.BENCH_SLICES ?? 9),
};

type Doc = {
  static_resources: {
    listeners: Array<{
      filter_chains: Array<{
        filters: Array<{
          typed_config: {
            http_filters?: Array<{
              name: string;
              typed_config: { grpc_service: { envoy_grpc: { cluster_name: string } } };
            }>;
          };
        }>;
      }>;
    }>;
    clusters: Array<Record<string, unknown>>;
  };
};
const EXT_PROC = 'envoy.filters.http.ext_proc';

/** Drops the inner listener's ext_proc filter: the "same Envoy without the ext_proc filter". */
function withoutInjection(yaml: string): string {
  const doc = parse(yaml) as Doc;
  const hcm = doc.static_resources.listeners[1]!.filter_chains[0]!.filters[0]!.typed_config;
  hcm.http_filters = hcm.http_filters!.filter((f) => f.name !== EXT_PROC);
  return stringify(doc, { lineWidth: 0 });
}

/** Points both ext_proc filters (connect and inject) at the server on `socket`; SDS stays on authproxy. */
function extProcAt(socket: string) {
  return (yaml: string): string => {
    const doc = parse(yaml) as Doc;
    for (const l of doc.static_resources.listeners)
      for (const fc of l.filter_chains)
        for (const f of fc.filters) {
          for (const h of f.typed_config.http_filters ?? [])
            if (h.name === EXT_PROC) h.typed_config.grpc_service.envoy_grpc.cluster_name = 'extproc_null';
        }
    const authproxy = doc.static_resources.clusters.find((c) => c.name === 'authproxy')!;
    const endpoint = { address: { pipe: { path: socket } } };
    doc.static_resources.clusters.push({
      ...authproxy,
      name: 'extproc_null',
      load_assignment: { cluster_name: 'extproc_null', endpoints: [{ lb_endpoints: [{ endpoint }] }] },
    });
    return stringify(doc, { lineWidth: 0 });
  };
}

/**
 * Sends the inner ext_proc filter only the headers a headers-only decision reads (forward_rules): what
 * trimming would save. Measured only (BENCH_FORWARD_RULES=1), not adopted: full_request snapshots and AWS
 * re-signing need the sandbox's whole header map, and the bootstrap can't know which hosts a hot-reloaded
 * or per-sandbox config will give them to.
 */
function withForwardRules(yaml: string): string {
  const doc = parse(yaml) as Doc;
  const hcm = doc.static_resources.listeners[1]!.filter_chains[0]!.filters[0]!.typed_config;
  for (const h of hcm.http_filters ?? []) {
    if (h.name === EXT_PROC)
      (h.typed_config as Record<string, unknown>).forward_rules = {
        allowed_headers: { patterns: PICKED_HEADERS.map((exact) => ({ exact })) },
      };
  }
  return stringify(doc, { lineWidth: 0 });
}

/**
 * The authproxy cluster with Envoy's own HTTP/2 defaults (BENCH_EXTPROC_H2_DEFAULTS=1): no keepalive pings,
 * where the rendered cluster sets AUTHPROXY_HTTP2 (src/envoy/clusters.ts). What the setting costs or saves,
 * in the same run.
 */
function withEnvoyH2Defaults(yaml: string): string {
  const doc = parse(yaml) as Doc;
  const cluster = doc.static_resources.clusters.find((c) => c.name === 'authproxy') as {
    typed_extension_protocol_options: Record<string, { explicit_http_config: { http2_protocol_options: object } }>;
  };
  for (const o of Object.values(cluster.typed_extension_protocol_options))
    o.explicit_http_config.http2_protocol_options = {};
  return stringify(doc, { lineWidth: 0 });
}

/** A sidecar rig as every Envoy benchmark runs it: CONFIG, the upstream as api.github.com, warn logs. */
export const startBenchRig = (envoyYaml?: (yaml: string) => string) =>
  startRig({
    hosts: ['api.github.com'],
    secrets: { TOKEN: 'bench-token' },
    config: () => CONFIG,
    logLevel: 'warn',
    envoyYaml,
  });

/**
 * The rig's authproxy (which the rig starts with Node's defaults), restarted with `nodeArgs` when there are
 * any: its pid, and the restarted server when there is one (the caller stops it).
 */
export async function authproxyWith(
  rig: Rig,
  nodeArgs: readonly string[],
): Promise<{ pid: number | undefined; restarted?: Server }> {
  const socket = join(rig.dir.path, 'run', 'authproxy.sock');
  const pid = findPid(socket);
  if (!nodeArgs.length || !pid) return { pid };
  const restarted = await relaunch(pid, socket, [...nodeArgs], () => rig.stopAuthproxy());
  return { pid: restarted.pid, restarted };
}

/** The load generator's arguments for HTTPS through the rig's forward proxy, CPU read from `pids`. */
export const httpsThrough = (rig: Rig, pids: readonly number[]) => [
  '-mode',
  'https',
  '-url',
  rig.url('api.github.com', '/user'),
  '-proxy',
  rig.proxyUrl,
  '-ca',
  rig.authproxyCa,
  '-pid',
  pids.join(','),
];

/** A fixed-rate open loop: `rate` requests per second over 16 connections for `seconds`, after a 0.5 s warm-up. */
export const openLoop = (rate: number, seconds: number) => [
  '-rate',
  String(rate),
  '-conns',
  '16',
  '-d',
  `${seconds}s`,
  '-warmup',
  '0.5s',
];

/** One sidecar of the run: how its Envoy config differs, the null server it points at, authproxy's Node.js flags. */
interface Variant {
  readonly name: string;
  readonly envoyYaml?: (yaml: string) => string;
  readonly server?: Server;
  readonly nodeArgs?: readonly string[];
}

interface Setup {
  readonly name: string;
  readonly rig: Rig;
  /** Envoy's pid, then the ext_proc server's. */
  readonly pids: number[];
}

const ms = (us: number, digits = 2) => fmt(us / 1000, digits);
const plus = (us: number) => `${us >= 0 ? '+' : ''}${ms(us)}`;
const col = (runs: LoadResult[], pick: (r: LoadResult) => number) => median(runs.map(pick));

/** The two tables of `npm run bench -- envoy`, and the goals' ratios. */
export async function runEnvoyBench(): Promise<string> {
  if (!envoyBinary()) return '\nEnvoy benchmark skipped: no Envoy binary (bash scripts/setup-deps.sh installs it)';
  const why = buildGo();
  if (why) return `\nEnvoy benchmark skipped: ${why}`;
  const dir = mkdtempSync(join(tmpdir(), 'authproxy-bench-envoy-'));
  const servers: Server[] = [];
  const setups: Setup[] = [];
  try {
    const go = await startNullGo(join(dir, 'null-go.sock'));
    servers.push(go);
    const js = await startNullGrpcJs(join(dir, 'null-grpcjs.sock'));
    servers.push(js);
    // BENCH_VARIANT_NODE_ARGS="--flag ...;--other": more authproxy setups, each run with exactly those Node.js
    // flags instead of the deployed ones (`none`: Node's defaults).
    const nodeVariants = (process.env.BENCH_VARIANT_NODE_ARGS ?? '')
      .split(';')
      .map((v) => v.trim())
      .filter(Boolean)
      .map(
        (v): Variant => ({
          name: `Envoy + authproxy, node ${v === 'none' ? 'defaults' : v}`,
          nodeArgs: v === 'none' ? [] : v.split(' ').filter(Boolean),
        }),
      );
    // The null setups point Envoy at their server (the rig's authproxy still serves SDS, as it is); every
    // authproxy setup runs it as deployed unless it says otherwise.
    const variants: Variant[] = [
      { name: 'Envoy alone', envoyYaml: withoutInjection },
      { name: 'Envoy + null Go', envoyYaml: extProcAt(go.address.slice(5)), server: go },
      { name: 'Envoy + null grpc-js', envoyYaml: extProcAt(js.address.slice(5)), server: js },
      { name: 'Envoy + authproxy', nodeArgs: AUTHPROXY_NODE_ARGS },
      ...(process.env.BENCH_FORWARD_RULES
        ? [{ name: 'Envoy + authproxy, forward_rules', envoyYaml: withForwardRules, nodeArgs: AUTHPROXY_NODE_ARGS }]
        : []),
      ...(process.env.BENCH_EXTPROC_H2_DEFAULTS
        ? [
            {
              name: "Envoy + authproxy, Envoy's HTTP/2 defaults",
              envoyYaml: withEnvoyH2Defaults,
              nodeArgs: AUTHPROXY_NODE_ARGS,
            },
          ]
        : []),
      ...nodeVariants,
    ];
    for (const { name, envoyYaml, server, nodeArgs = [] } of variants) {
      const rig = await startBenchRig(envoyYaml);
      const authproxy = await authproxyWith(rig, nodeArgs);
      if (authproxy.restarted) servers.push(authproxy.restarted);
      setups.push({ name, rig, pids: [rig.envoy.process.pid!, server?.pid ?? authproxy.pid ?? 0] });
    }
    const closed = new Map<string, LoadResult[]>();
    const open = new Map<string, LoadResult[]>();
    for (let round = 0; round < Math.max(ROUNDS, OPEN.slices); round++) {
      for (let k = 0; k < setups.length; k++) {
        const s = setups[(round + k) % setups.length]!;
        const base = httpsThrough(s.rig, s.pids);
        if (round < ROUNDS)
          closed.set(s.name, [
            ...(closed.get(s.name) ?? []),
            await loadgen([...base, '-c', String(CLOSED.conns), '-d', `${CLOSED.seconds}s`], `${s.name} closed`),
          ]);
        if (round < OPEN.slices)
          open.set(s.name, [
            ...(open.get(s.name) ?? []),
            await loadgen([...base, ...openLoop(OPEN.rate, OPEN.seconds)], `${s.name} open`),
          ]);
      }
    }
    const counters = await Promise.all(
      setups.map(async (s) => [s.name, troubleCounters(await failureStats(adminPortOf(s.rig.dir.path)))] as const),
    );
    return (
      report(
        setups.map((s) => s.name),
        closed,
        open,
      ) +
      countersReport(counters) +
      staleBuildNote()
    );
  } finally {
    for (const n of servers) await n.stop();
    for (const s of setups) await s.rig.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** What failureStats picks that is a sign of trouble: failures, timeouts, resets, 5xx, ejections, rejections. */
const TROUBLE = /(fail|timeout|reset|5xx|eject|error|active_rq|spurious|reject)/;
/** Envoy's admin listener (the rig's readiness polls get 503s before Envoy is ready): not the sidecar's traffic. */
const ADMIN = /^(http|listener)\.admin\./;

/** The non-zero failure counters of one Envoy (stream failures, message timeouts, resets, 5xx). */
function troubleCounters(lines: string[]): string[] {
  return lines.map((l) => l.trim()).filter((l) => TROUBLE.test(l.split(':')[0]!) && !ADMIN.test(l));
}

/** One line per setup: what Envoy's own statistics say went wrong during the run (nothing, when all is well). */
function countersReport(counters: ReadonlyArray<readonly [string, string[]]>): string {
  const lines = counters.map(([name, trouble]) => `  ${name}: ${trouble.length === 0 ? 'none' : trouble.join(', ')}`);
  return `\n\nEnvoy's failure counters after the run (ext_proc stream failures and timeouts, authproxy-cluster resets and timeouts, 5xx):\n${lines.join('\n')}`;
}

function report(names: string[], closed: Map<string, LoadResult[]>, open: Map<string, LoadResult[]>): string {
  const [alone, nullGo, nullJs, authproxy] = names;
  const rps = (n: string) => col(closed.get(n)!, (r) => r.per_s);
  const cpu = (runs: LoadResult[], i: number) => col(runs, (r) => r.cpu_us_per_op![i]!);
  const closedRows =
    ROUNDS === 0
      ? []
      : names.map((n) => {
          const runs = closed.get(n)!;
          return [
            n,
            fmt(rps(n)),
            ms(col(runs, (r) => r.p50_us)),
            ms(col(runs, (r) => r.p99_us)),
            fmt(cpu(runs, 0)),
            n === alone ? '' : fmt(cpu(runs, 1)),
            runs.reduce((e, r) => e + r.errors, 0),
            n === alone ? '' : `${fmt(rps(n) / rps(nullGo!), 2)}×`,
          ];
        });
  /** Median over slices of (this setup's figure − Envoy alone's in the same slice). */
  const added = (n: string, pick: (r: LoadResult) => number) =>
    median(open.get(n)!.map((r, i) => pick(r) - pick(open.get(alone!)![i]!)));
  const openRows = names.map((n) => {
    const runs = open.get(n)!;
    const extra =
      n === alone
        ? ['', '', '']
        : [plus(added(n, (r) => r.p50_us)), plus(added(n, (r) => r.p99_us)), plus(added(n, (r) => r.p999_us))];
    return [
      n,
      fmt(col(runs, (r) => r.per_s)),
      ms(col(runs, (r) => r.p50_us)),
      ms(col(runs, (r) => r.p99_us)),
      ms(col(runs, (r) => r.p999_us)),
      ...extra,
      fmt(cpu(runs, 0)),
      n === alone ? '' : fmt(cpu(runs, 1)),
      runs.reduce((e, r) => e + r.errors, 0),
      ms(col(runs, (r) => r.send_lag_p99_us ?? 0)),
    ];
  });
  const p99 = (n: string) => added(n, (r) => r.p99_us);
  const goals = [
    ...(ROUNDS === 0
      ? []
      : [
          `authproxy vs Envoy + null Go, closed-loop throughput: ${fmt(rps(authproxy!) / rps(nullGo!), 2)}× (goal ≥ 0.85×)`,
        ]),
    `authproxy added p50 at ${OPEN.rate} req/s: ${plus(added(authproxy!, (r) => r.p50_us))} ms (goal ≤ 0.6 ms); added p99 ${plus(p99(authproxy!))} ms vs null grpc-js ${plus(p99(nullJs!))} ms${p99(nullJs!) > 0 ? `: ${fmt(p99(authproxy!) / p99(nullJs!), 2)}×` : ''} (goal ≤ 1×)`,
  ];
  const note = 'Envoy --concurrency 1; loader, Envoy, ext_proc server and upstream share the cores';
  const closedTable =
    ROUNDS === 0
      ? ''
      : table(
          `HTTPS through the Envoy sidecar, closed loop: ${CLOSED.conns} keep-alive connections × ${CLOSED.seconds} s (median of ${ROUNDS} interleaved rounds; ${note})`,
          [
            'setup',
            'req/s',
            'p50 ms',
            'p99 ms',
            'Envoy CPU µs/req',
            'ext_proc CPU µs/req',
            'errors',
            'req/s vs null Go',
          ],
          closedRows,
        );
  return (
    closedTable +
    table(
      `HTTPS through the Envoy sidecar, open loop: ${OPEN.rate} req/s, latency from the scheduled send time (median of ${OPEN.slices} interleaved ${OPEN.seconds} s slices; ${note})`,
      [
        'setup',
        'req/s',
        'p50 ms',
        'p99 ms',
        'p99.9 ms',
        'added p50',
        'added p99',
        'added p99.9',
        'Envoy CPU µs/req',
        'ext_proc CPU µs/req',
        'errors',
        'loader late p99 ms',
      ],
      openRows,
    ) +
    '\n' +
    goals.join('\n')
  );
}
