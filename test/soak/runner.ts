/**
 * The soak: a fixed request rate through the real sidecar (Envoy + authproxy with Redis) for a given time,
 * a static rule host and a callback host mixed, sampling authproxy's memory, event-loop delay and handles
 * (its own /metrics) and Envoy's ext_proc statistics every 10 s. Shared by `npm run soak` (10 minutes,
 * figures) and the CI test (60 s, counts only). Latency is measured from each request's scheduled send
 * time, so a stall shows up as latency instead of silently lowering the rate.
 */
import { readFileSync } from 'node:fs';
import { ProxyAgent, request } from 'undici';
import { answer, startCallbackServer } from '../helpers/callback-server.js';
import { freePort } from '../helpers/envoy.js';
import { startRedis } from '../helpers/redis.js';
import { startRig } from '../helpers/sidecar-rig.js';
import { adminPortOf, detailedAccessLog, failedAccessLines, failureStats } from '../helpers/chaos-envoy-log.js';

export const SOAK_TOKEN = 'soak_static_canary_2b7e';
export const SOAK_CALLBACK_TOKEN = 'soak_callback_canary_93fa';

/** One 10-second sample. */
export interface SoakSample {
  readonly second: number;
  readonly rssBytes: number;
  readonly heapUsedBytes: number;
  readonly eventLoopP99Ms: number;
  readonly handles: number;
  readonly extProcStreams: number;
  readonly extProcResets: number;
}

/** What a soak run found. */
export interface SoakResult {
  readonly sent: number;
  readonly ok: number;
  readonly errors: number;
  /** Requests that reached the upstream without the credential they should have had. */
  readonly wrongCredential: number;
  /** Per minute: [requests, p50 ms, p99 ms]. */
  readonly minutes: ReadonlyArray<readonly [number, number, number]>;
  readonly samples: readonly SoakSample[];
  readonly errorKinds: Readonly<Record<string, number>>;
  /** authproxy's output, to check for secrets. */
  readonly output: string;
  /** Each failed request: seconds from the start (its scheduled send time) and kind. */
  readonly errorTimes: ReadonlyArray<readonly [number, string]>;
  /** Where failures came from: Envoy's access-log lines of non-200 answers, its non-zero failure counters, authproxy's warnings. */
  readonly diagnostics: {
    readonly accessLog: string[];
    readonly envoyStats: string[];
    readonly authproxyWarnings: string[];
  };
}

function metric(text: string, name: string): number {
  const m = new RegExp(`^${name}(?:\\{[^}]*\\})? ([0-9.eE+-]+)$`, 'm').exec(text);
  return m ? Number(m[1]) : NaN;
}

const pct = (xs: number[], p: number) =>
  xs.length ? xs[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))]! : 0;

/** Runs the soak for `seconds` at `rate` requests per second; `onSample` sees each sample as it is taken. */
export async function runSoak(seconds: number, rate: number, onSample?: (s: SoakSample) => void): Promise<SoakResult> {
  const redis = await startRedis();
  const callbacks = await startCallbackServer(answer({ Authorization: `Bearer ${SOAK_CALLBACK_TOKEN}` }));
  const metricsPort = await freePort();
  const rig = await startRig({
    hosts: ['api.github.com', 'api.example.com'],
    secrets: { TOKEN: SOAK_TOKEN },
    logLevel: 'warn',
    serveArgs: ['--redis', redis.url, '--metrics-listen', `127.0.0.1:${metricsPort}`],
    envoyYaml: detailedAccessLog,
    config: () => `
rules:
  - name: github
    match_hosts: ["api.github.com"]
    headers: [{ name: Authorization, type: workspace_secret, value: "Bearer {TOKEN}" }]
callbacks:
  - match_hosts: ["api.example.com"]
    url: "${callbacks.url}"
    ttl_seconds: 60
`,
  });
  // One proxy agent per host: undici's ProxyAgent can send a request for one origin over a tunnel opened
  // for another on the same proxy, which authproxy rightly answers 421 (CONNECT target and Host disagree).
  const agent = () =>
    new ProxyAgent({ uri: rig.proxyUrl, requestTls: { ca: readFileSync(rig.authproxyCa, 'utf8') }, connections: 16 });
  const staticAgent = agent();
  const callbackAgent = agent();
  const latencies: number[][] = [];
  const errorKinds: Record<string, number> = {};
  const errorTimes: Array<readonly [number, string]> = [];
  let t0 = 0;
  const fail = (scheduled: number, kind: string) => {
    errorKinds[kind] = (errorKinds[kind] ?? 0) + 1;
    errorTimes.push([Math.round((scheduled - t0) / 100) / 10, kind]);
  };
  const diagnostics = { accessLog: [] as string[], envoyStats: [] as string[], authproxyWarnings: [] as string[] };
  let sent = 0;
  let ok = 0;
  let wrongCredential = 0;
  const samples: SoakSample[] = [];
  const sample = async (second: number) => {
    const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
    const s: SoakSample = {
      second,
      rssBytes: metric(text, 'process_resident_memory_bytes'),
      heapUsedBytes: metric(text, 'nodejs_heap_size_used_bytes'),
      eventLoopP99Ms: metric(text, 'nodejs_eventloop_lag_p99_seconds') * 1000,
      handles: metric(text, 'nodejs_active_handles_total'),
      // Envoy creates these statistics with the first ext_proc connection: NaN until then.
      extProcStreams: await rig.envoyStat('cluster.authproxy.upstream_rq_total').catch(() => NaN),
      extProcResets: await rig.envoyStat('cluster.authproxy.http2.tx_reset').catch(() => NaN),
    };
    samples.push(s);
    onSample?.(s);
  };
  const one = async (scheduled: number, minute: number, i: number) => {
    const callbackHost = i % 10 === 9;
    try {
      const res = await request(rig.url(callbackHost ? 'api.example.com' : 'api.github.com', `/soak/${i}`), {
        dispatcher: callbackHost ? callbackAgent : staticAgent,
        headersTimeout: 30_000,
        bodyTimeout: 30_000,
      });
      const body = await res.body.text();
      if (res.statusCode !== 200) {
        fail(scheduled, `status ${res.statusCode}`);
        return;
      }
      const auth = (JSON.parse(body) as { headers: Record<string, string> }).headers.authorization;
      if (auth !== `Bearer ${callbackHost ? SOAK_CALLBACK_TOKEN : SOAK_TOKEN}`) wrongCredential++;
      ok++;
      (latencies[minute] ??= []).push(performance.now() - scheduled);
    } catch (err) {
      const kind = (err as { code?: string }).code ?? 'error';
      fail(scheduled, kind);
    }
  };
  try {
    const start = performance.now();
    t0 = start;
    const inflight = new Set<Promise<void>>();
    let nextSample = 0;
    // Open loop: request i is due at start + i / rate, whatever the earlier ones are doing.
    while (performance.now() - start < seconds * 1000) {
      const now = performance.now();
      const due = Math.floor(((now - start) / 1000) * rate);
      while (sent < due) {
        const scheduled = start + (sent / rate) * 1000;
        const p = one(scheduled, Math.floor((scheduled - start) / 60_000), sent).finally(() => inflight.delete(p));
        inflight.add(p);
        sent++;
      }
      if (now - start >= nextSample * 10_000) await sample(nextSample++ * 10);
      await new Promise((r) => setTimeout(r, 5));
    }
    await Promise.all(inflight);
    await sample(seconds);
    diagnostics.envoyStats = await failureStats(adminPortOf(rig.dir.path)).catch((err: Error) => [
      `stats: ${err.message}`,
    ]);
  } finally {
    diagnostics.accessLog = failedAccessLines(rig.envoy.output());
    diagnostics.authproxyWarnings = rig
      .authproxyOutput()
      .split('\n')
      .filter((l) => /"level":(40|50|60)|WARN|ERROR/.test(l))
      .slice(0, 30);
    await staticAgent.close();
    await callbackAgent.close();
    await rig.stop();
    await callbacks.close();
    await redis.close();
  }
  const minutes = latencies.map((xs) => {
    xs.sort((a, b) => a - b);
    return [xs.length, pct(xs, 50), pct(xs, 99)] as const;
  });
  const errors = Object.values(errorKinds).reduce((a, b) => a + b, 0);
  return {
    sent,
    ok,
    errors,
    wrongCredential,
    minutes,
    samples,
    errorKinds,
    output: rig.authproxyOutput(),
    errorTimes,
    diagnostics,
  };
}
