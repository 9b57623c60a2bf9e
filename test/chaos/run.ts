/**
 * `npm run chaos [-- STEP]`: chaos under load through the real sidecar (Envoy + authproxy + Redis). Each
 * step sends a steady 100 req/s (CHAOS_RATE) — 90 % to a static-rule host, 10 % to a callback host
 * (`full_request: true`: called on every request, so a callback fault shows at once) — injects one fault,
 * lifts it and asserts: no request reached the upstream with a credential it should not have (none,
 * another, a stale one), the expected refusals, and recovery within the step's bound. Two steps run in
 * environments of their own: replica-kill (two authproxy replicas behind one Envoy, test/chaos/replicas.ts)
 * and sds-unavailable (new TLS handshakes while SDS is down, test/chaos/sds.ts). Prints one row per step
 * and exits non-zero if an assertion failed. Not part of `npm test`.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { answer, type Behaviour } from '../helpers/callback-server.js';
import { startRedisCluster, startRedisSentinel } from './redis-failover.js';
import { startEnvoy } from '../helpers/envoy.js';
import { startRedis } from '../helpers/redis.js';
import type { Rig } from '../helpers/sidecar-rig.js';
import {
  CALLBACK,
  closeEnv,
  config,
  makeEnv,
  RATE,
  sleep,
  standardLoad,
  STATIC,
  STATIC_NEXT,
  type Env,
} from './common.js';
import { replicaKillStep } from './replicas.js';
import { sdsUnavailableStep } from './sds.js';
import { chaosTable, rows, step as runStep, type Expect } from './step.js';
import type { LoadResult } from './load.js';

/** A step under the standard load of `env`. */
const step = (
  name: string,
  env: Env,
  expect: Expect,
  fault: () => Promise<void>,
  check?: (results: readonly LoadResult[]) => string[],
) => runStep(name, standardLoad(env), expect, fault, check);

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
  // Slow but inside the 1 s callback timeout, with room for a busy machine's scheduling delays.
  slow: answer({ Authorization: CALLBACK }, 500),
  '5xx': (_req, res) => res.writeHead(503).end('nope'),
  hang: () => undefined,
  'close-mid-body': (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': '200' });
    res.write('{"headers": {"Authorization": "Bearer chaos_');
    setTimeout(() => res.socket?.destroy(), 50);
  },
};

const main = async () => {
  console.log(
    `chaos: ${RATE} req/s through Envoy + authproxy + Redis (node ${process.version})${only ? `, step ${only}` : ''}`,
  );
  const single = [
    'authproxy-restart',
    'redis-kill',
    'redis-pause',
    'redis-restart-empty',
    'callback-slow',
    'callback-5xx',
    'callback-hang',
    'callback-close-mid-body',
    'config-invalid-then-valid',
    'envoy-restart',
  ];
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
        await step(
          `callback-${kind}`,
          env,
          { mustRefuse: !slow, maxRefused: slow ? 0 : undefined, recoverWithinMs: 5000 },
          async () => {
            env.cb.set(behaviours[kind]!);
            await sleep(6000);
            env.cb.set(answer({ Authorization: CALLBACK }));
          },
        );
      }
      if (want('config-invalid-then-valid')) {
        let switched = 0;
        await step(
          'config-invalid-then-valid',
          env,
          { maxRefused: 0, recoverWithinMs: 3000 },
          async () => {
            env.allowedStatic = [STATIC, STATIC_NEXT];
            writeFileSync(env.rig.configPath, 'rules:\n  - name: [broken\n    match_hosts: 7\n');
            await sleep(4000);
            writeFileSync(env.rig.configPath, config(env.cb.url, 'Token'));
            switched = Date.now();
          },
          (results) => {
            const why: string[] = [];
            const gh = results.filter((r) => r.host === 'api.github.com' && r.status === 200);
            // Last good config kept while the file is invalid, the new one applied within 3 s of the switch.
            const during = gh.filter((r) => r.sentAt < switched);
            if (during.some((r) => r.auth !== STATIC)) why.push('invalid config changed the injected value');
            const late = gh.filter((r) => r.sentAt > switched + 3000);
            if (late.length === 0 || late.some((r) => r.auth !== STATIC_NEXT))
              why.push('valid config not applied within 3 s');
            return why;
          },
        );
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
  for (const [name, run] of [
    ['replica-kill', replicaKillStep],
    ['sds-unavailable', sdsUnavailableStep],
  ] as const) {
    if (!want(name)) continue;
    const redis = await startRedis();
    try {
      await run(redis.url);
    } catch (err) {
      rows.push({
        step: name,
        requests: 0,
        ok: 0,
        refused: 0,
        bad: 0,
        recoverMs: NaN,
        statuses: {},
        pass: false,
        why: [`setup error: ${(err as Error).message.slice(0, 200)}`],
      });
    } finally {
      await redis.close();
    }
  }
  console.log(chaosTable());
  process.exit(rows.length > 0 && rows.every((r) => r.pass) ? 0 : 1);
};

await main();
