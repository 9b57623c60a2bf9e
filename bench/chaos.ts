/**
 * `npm run chaos [-- STEP]`: chaos under load through the real sidecar (Envoy + authproxy + Redis). Each
 * step sends a steady 100 req/s (CHAOS_RATE) — 90 % to a static-rule host, 10 % to a callback host
 * (`full_request: true`: called on every request, so a callback fault shows at once) — injects one fault,
 * lifts it and asserts: no request reached the upstream with a credential it should not have (none,
 * another, a stale one), the expected refusals, and recovery within the step's bound. Prints one row per step and exits non-zero if an assertion failed. Not part of `npm test`.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { answer, startCallbackServer, type Behaviour } from '../test/helpers/callback-server.js';
import { ChaosLoad, summarise } from '../test/helpers/chaos-load.js';
import { startRedisCluster, startRedisSentinel } from '../test/helpers/chaos-redis.js';
import { startEnvoy } from '../test/helpers/envoy.js';
import { startRedis } from '../test/helpers/redis.js';
import { startRig, type Rig } from '../test/helpers/sidecar-rig.js';
import { fmt, table } from './stats.js';

const RATE = Number(process.env.CHAOS_RATE ?? 100);
const STATIC = 'Bearer chaos_static_canary_51c0';
const STATIC_NEXT = 'Token chaos_static_canary_51c0';
const CALLBACK = 'Bearer chaos_callback_canary_7d2e';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const config = (cbUrl: string, prefix = 'Bearer') => `
rules:
  - name: github
    match_hosts: ["api.github.com"]
    headers: [{ name: Authorization, type: workspace_secret, value: "${prefix} {TOKEN}" }]
callbacks:
  - match_hosts: ["api.example.com"]
    url: "${cbUrl}"
    ttl_seconds: 60
    full_request: true
`;

interface Env {
  rig: Rig;
  cb: Awaited<ReturnType<typeof startCallbackServer>>;
  allowedStatic: string[];
}

async function makeEnv(redisUrl: string): Promise<Env> {
  const cb = await startCallbackServer(answer({ Authorization: CALLBACK }));
  const rig = await startRig({
    hosts: ['api.github.com', 'api.example.com'],
    secrets: { TOKEN: 'chaos_static_canary_51c0' },
    logLevel: 'warn',
    serveArgs: ['--redis', redisUrl, '--callback-timeout-ms', '1000'],
    config: () => config(cb.url),
  });
  return { rig, cb, allowedStatic: [STATIC] };
}

async function closeEnv(env: Env): Promise<void> {
  // rig.stop() stops the Envoy it started; one restarted by the envoy-restart step is stopped here.
  const envoy = env.rig.envoy;
  await env.rig.stop().catch(() => undefined);
  await envoy.stop().catch(() => undefined);
  await env.cb.close();
}

interface Expect {
  /** Refusals allowed (non-2xx) over the whole step; undefined = any. */
  readonly maxRefused?: number;
  /** At least one refusal expected (the fault must be visible: fail closed). */
  readonly mustRefuse?: boolean;
  readonly recoverWithinMs: number;
}

interface Row {
  step: string;
  requests: number;
  ok: number;
  refused: number;
  bad: number;
  recoverMs: number;
  statuses: Record<string, number>;
  pass: boolean;
  why: string[];
}

const rows: Row[] = [];

async function step(name: string, env: Env, expect: Expect, fault: () => Promise<void>, check?: (results: ChaosLoad['results']) => string[]): Promise<void> {
  const t0 = Date.now();
  console.log(`-- ${name}`);
  const load = new ChaosLoad(env.rig, [
    { host: 'api.github.com', weight: 9, allowed: () => env.allowedStatic },
    { host: 'api.example.com', weight: 1, allowed: () => [CALLBACK] },
  ], RATE);
  const why: string[] = [];
  load.start();
  let faultEnd = Date.now();
  try {
    await sleep(2000);
    await fault();
    faultEnd = Date.now();
    const deadline = faultEnd + Math.max(expect.recoverWithinMs, 5000) + 5000;
    while (Date.now() < deadline && !load.results.some((r) => r.sentAt >= faultEnd && r.status === 200 && !r.bad)) await sleep(100);
    await sleep(3000);
  } catch (err) {
    why.push(`step error: ${(err as Error).message.slice(0, 200)}`);
  } finally {
    await load.stop();
  }
  const s = summarise(load.results, faultEnd);
  if (s.bad !== 0) why.push(`${s.bad} wrong credential`);
  if (expect.maxRefused !== undefined && s.refused > expect.maxRefused) why.push(`${s.refused} refused > ${expect.maxRefused}`);
  if (expect.mustRefuse && s.refused === 0) why.push('fault not visible (0 refused)');
  if (!(s.recoverMs <= expect.recoverWithinMs)) why.push(`recovery ${Number.isNaN(s.recoverMs) ? 'never' : `${s.recoverMs} ms`} > ${expect.recoverWithinMs} ms`);
  if (s.refusedAfterRecovery > 0) why.push(`${s.refusedAfterRecovery} refused > 1 s after recovery`);
  why.push(...(check?.(load.results) ?? []));
  const row = { step: name, requests: s.requests, ok: s.ok, refused: s.refused, bad: s.bad, recoverMs: s.recoverMs, statuses: s.statuses, pass: why.length === 0, why };
  rows.push(row);
  console.log(`   ${row.pass ? 'PASS' : 'FAIL'} requests=${s.requests} ok=${s.ok} refused=${s.refused} ${JSON.stringify(s.statuses)} wrong=${s.bad} recover=${s.recoverMs} ms (${((Date.now() - t0) / 1000).toFixed(1)} s) ${why.join('; ')}`);
}

const only = process.argv[2];
const want = (name: string) => !only || only === name || name.startsWith(`${only}`);

function redisCli(port: number, ...args: string[]): string {
  const r = spawnSync('redis-cli', ['-p', String(port), ...args]);
  return r.stdout.toString();
}

async function restartEnvoy(rig: Rig): Promise<void> {
  const yaml = readFileSync(join(rig.dir.path, 'envoy.yaml'), 'utf8');
  const m = /admin:[\s\S]*?port_value:\s*(\d+)/.exec(yaml);
  if (!m) throw new Error('no admin port in envoy.yaml');
  await rig.envoy.stop();
  await sleep(1000);
  rig.envoy = await startEnvoy(rig.dir.path, yaml, Number(m[1]));
}

const behaviours: Record<string, Behaviour> = {
  slow: answer({ Authorization: CALLBACK }, 700),
  '5xx': (_req, res) => res.writeHead(503).end('nope'),
  hang: () => undefined,
  'close-mid-body': (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': '200' });
    res.write('{"headers": {"Authorization": "Bearer chaos_');
    setTimeout(() => res.socket?.destroy(), 50);
  },
};

const main = async () => {
  console.log(`chaos: ${RATE} req/s through Envoy + authproxy + Redis (node ${process.version})${only ? `, step ${only}` : ''}`);
  const single = ['authproxy-restart', 'redis-kill', 'redis-pause', 'redis-restart-empty', 'callback-slow', 'callback-5xx', 'callback-hang', 'callback-close-mid-body', 'config-invalid-then-valid', 'envoy-restart'];
  if (single.some(want)) {
    const redis = await startRedis();
    const env = await makeEnv(redis.url);
    try {
      if (want('authproxy-restart'))
        await step('authproxy-restart', env, { mustRefuse: true, recoverWithinMs: 10_000 }, async () => {
          await env.rig.stopAuthproxy();
          await sleep(3000);
          await env.rig.startAuthproxy();
        });
      if (want('redis-kill'))
        await step('redis-kill', env, { maxRefused: 0, recoverWithinMs: 2000 }, async () => {
          await redis.stop();
          await sleep(5000);
          await redis.start();
        });
      if (want('redis-pause'))
        await step('redis-pause', env, { maxRefused: 0, recoverWithinMs: 2000 }, async () => {
          redisCli(redis.port, 'CLIENT', 'PAUSE', '3000');
          await sleep(3000);
        });
      if (want('redis-restart-empty'))
        await step('redis-restart-empty', env, { maxRefused: 0, recoverWithinMs: 2000 }, async () => {
          await redis.stop();
          await redis.start();
        });
      for (const kind of ['slow', '5xx', 'hang', 'close-mid-body']) {
        if (!want(`callback-${kind}`)) continue;
        const slow = kind === 'slow';
        await step(`callback-${kind}`, env, { mustRefuse: !slow, maxRefused: slow ? 0 : undefined, recoverWithinMs: 5000 }, async () => {
          env.cb.set(behaviours[kind]!);
          await sleep(6000);
          env.cb.set(answer({ Authorization: CALLBACK }));
        });
      }
      if (want('config-invalid-then-valid')) {
        let switched = 0;
        await step('config-invalid-then-valid', env, { maxRefused: 0, recoverWithinMs: 3000 }, async () => {
          env.allowedStatic = [STATIC, STATIC_NEXT];
          writeFileSync(env.rig.configPath, 'rules:\n  - name: [broken\n    match_hosts: 7\n');
          await sleep(4000);
          writeFileSync(env.rig.configPath, config(env.cb.url, 'Token'));
          switched = Date.now();
        }, (results) => {
          const why: string[] = [];
          const gh = results.filter((r) => r.host === 'api.github.com' && r.status === 200);
          // Last good config kept while the file is invalid, the new one applied within 3 s of the switch.
          const during = gh.filter((r) => r.sentAt < switched);
          if (during.some((r) => r.auth !== STATIC)) why.push('invalid config changed the injected value');
          const late = gh.filter((r) => r.sentAt > switched + 3000);
          if (late.length === 0 || late.some((r) => r.auth !== STATIC_NEXT)) why.push('valid config not applied within 3 s');
          return why;
        });
        writeFileSync(env.rig.configPath, config(env.cb.url));
        await sleep(3000);
        env.allowedStatic = [STATIC];
      }
      if (want('envoy-restart'))
        await step('envoy-restart', env, { mustRefuse: true, recoverWithinMs: 10_000 }, () => restartEnvoy(env.rig));
    } finally {
      await closeEnv(env);
      await redis.close();
    }
  }
  if (want('redis-cluster-failover')) {
    const cluster = await startRedisCluster();
    const env = await makeEnv(cluster.url);
    try {
      await step('redis-cluster-failover', env, { maxRefused: 0, recoverWithinMs: 2000 }, async () => {
        await cluster.killMasterAndWaitForFailover();
      });
    } finally {
      await closeEnv(env);
      await cluster.close();
    }
  }
  if (want('redis-sentinel-failover')) {
    const sentinel = await startRedisSentinel();
    const env = await makeEnv(sentinel.url);
    try {
      await step('redis-sentinel-failover', env, { maxRefused: 0, recoverWithinMs: 2000 }, async () => {
        await sentinel.failover();
      });
    } finally {
      await closeEnv(env);
      await sentinel.close();
    }
  }
  console.log(table('Chaos under load', ['step', 'requests', 'ok', 'refused', 'wrong credential', 'recover ms', 'result'],
    rows.map((r) => [r.step, fmt(r.requests), fmt(r.ok), `${fmt(r.refused)} ${Object.keys(r.statuses).length ? JSON.stringify(r.statuses) : ''}`, r.bad, Number.isNaN(r.recoverMs) ? 'never' : fmt(r.recoverMs), r.pass ? 'pass' : `FAIL: ${r.why.join('; ')}`])));
  console.log('not covered yet: one of two replicas killed, SDS unavailable during new handshakes');
  process.exit(rows.length > 0 && rows.every((r) => r.pass) ? 0 : 1);
};

await main();
