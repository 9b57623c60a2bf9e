/**
 * The replica-kill step: two `authproxy serve` replicas sharing one Redis behind one Envoy whose
 * `authproxy` cluster has both as endpoints (two Unix sockets; the shared-service deployment has the
 * same shape over TCP + mTLS with STRICT_DNS), with the bootstrap's gRPC health check (grpc.health.v1)
 * and outlier detection on local-origin failures. One replica is SIGKILLed under load and stays down:
 * no wrong credential, refusals only while Envoy learns the endpoint is gone, and the survivor answers
 * everything after. CHAOS_REPLICA_HEALTH=0 removes the health check and outlier detection, to show what
 * they are for (half the streams kept going to the dead replica: 500s until it came back).
 */
import { dirname, join } from 'node:path';
import { parse, stringify } from 'yaml';
import { startCli } from '../helpers/cli.js';
import { eventually } from '../helpers/fs.js';
import { adminPortOf } from '../helpers/chaos-envoy-log.js';
import { existsSync } from 'node:fs';
import { closeEnv, makeEnv, sleep, standardLoad, type Env } from './common.js';
import { step } from './step.js';

const HEALTH = process.env.CHAOS_REPLICA_HEALTH !== '0';

interface Cluster {
  name: string;
  load_assignment: {
    endpoints: Array<{ lb_endpoints: Array<{ endpoint: { address: { pipe?: { path: string } } } }> }>;
  };
  [k: string]: unknown;
}

/** Second socket path beside the rig's: `<run>/authproxy-2.sock`. */
const secondSocket = (first: string) => join(dirname(first), 'authproxy-2.sock');

/** Gives the Envoy YAML's `authproxy` cluster a second endpoint; with CHAOS_REPLICA_HEALTH=0 it loses its health checking. */
export function twoReplicaYaml(yaml: string): string {
  const doc = parse(yaml) as { static_resources: { clusters: Cluster[] } };
  const cluster = doc.static_resources.clusters.find((c) => c.name === 'authproxy');
  const lbs = cluster?.load_assignment.endpoints[0]?.lb_endpoints;
  const first = lbs?.[0]?.endpoint.address.pipe?.path;
  if (!cluster || !lbs || !first) throw new Error('no authproxy cluster on a Unix socket in the Envoy YAML');
  lbs.push({ endpoint: { address: { pipe: { path: secondSocket(first) } } } });
  if (!HEALTH) {
    delete cluster.health_checks;
    delete cluster.outlier_detection;
  }
  return stringify(doc, { aliasDuplicateObjects: false, lineWidth: 0 });
}

/** Starts a second `authproxy serve` with the rig's keys, config and Redis on the second socket. */
async function startSecondReplica(env: Env) {
  const dir = env.rig.dir.path;
  const socket = join(dir, 'run', 'authproxy-2.sock');
  const keys = join(dir, 'keys');
  const replica = startCli([
    'serve',
    '--config',
    env.rig.configPath,
    '--listen',
    `unix:${socket}`,
    '--secrets-dir',
    join(dir, 'secrets'),
    '--sealing-key',
    join(keys, 'sealing.key'),
    '--ca-cert',
    join(keys, 'ca.crt'),
    '--ca-key',
    join(keys, 'ca.key'),
    '--log-level',
    'warn',
    '--dns-resolver',
    `127.0.0.1:${env.rig.dns.port}`,
    '--egress-allow-cidrs',
    '127.0.0.0/8',
    ...env.serveArgs,
  ]);
  await eventually(
    () => {
      if (replica.child.exitCode !== null) throw new Error(`second replica exited: ${replica.output().slice(-2000)}`);
      return existsSync(socket);
    },
    15_000,
    'second replica to start',
  );
  return replica;
}

/** Streams (rq_total) Envoy sent to each authproxy endpoint, from the admin port's /clusters. */
async function perEndpoint(env: Env): Promise<string> {
  const text = await (await fetch(`http://127.0.0.1:${adminPortOf(env.rig.dir.path)}/clusters`)).text();
  return [...text.matchAll(/^authproxy::([^:]+)::rq_total::(\d+)$/gm)]
    .map((m) => `${m[1]!.split('/').pop()} ${m[2]}`)
    .join(', ');
}

/** Runs the `replica-kill` step in its own environment on `redisUrl`. */
export async function replicaKillStep(redisUrl: string): Promise<void> {
  const env = await makeEnv(redisUrl, { envoyYaml: twoReplicaYaml });
  let second: Awaited<ReturnType<typeof startSecondReplica>> | undefined;
  try {
    second = await startSecondReplica(env);
    const survivor = second;
    if (HEALTH)
      await eventually(
        async () => (await env.rig.envoyStat('cluster.authproxy.membership_healthy')) === 2,
        15_000,
        'both replicas healthy in Envoy',
      );
    else await sleep(1000);
    let killedAt = 0;
    await step(
      `replica-kill${HEALTH ? '' : ' (no health check)'}`,
      standardLoad(env),
      { recoverWithinMs: HEALTH ? 3000 : 10_000, recovery: 'last-refusal', observeMs: 8000 },
      async () => {
        // The rig's replica (SIGKILL, socket removed); the second keeps serving and the first stays down.
        console.log(`   ext_proc/SDS streams per replica before the kill: ${await perEndpoint(env)}`);
        await env.rig.stopAuthproxy();
        killedAt = Date.now();
      },
      (results, faultEnd) => {
        const why: string[] = [];
        const after = results.filter((r) => r.sentAt >= faultEnd + 3000);
        const okAfter = after.filter((r) => r.status === 200 && !r.bad).length;
        console.log(
          `   killed at +${killedAt - faultEnd} ms; after kill + 3 s: ${okAfter}/${after.length} ok (all from the survivor)`,
        );
        if (survivor.child.exitCode !== null) why.push('survivor exited');
        if (after.length === 0 || okAfter !== after.length)
          why.push(`survivor answered ${okAfter}/${after.length} after kill + 3 s`);
        return why;
      },
    );
    console.log(`   streams per replica at the end: ${await perEndpoint(env)}`);
    const healthyAfter = await env.rig.envoyStat('cluster.authproxy.membership_healthy').catch(() => NaN);
    console.log(
      `   Envoy cluster.authproxy: healthy endpoints ${healthyAfter}, outlier ejections ${await env.rig.envoyStat('cluster.authproxy.outlier_detection.ejections_enforced_total').catch(() => NaN)}, connect failures ${await env.rig.envoyStat('cluster.authproxy.upstream_cx_connect_fail').catch(() => NaN)}`,
    );
  } finally {
    second?.child.kill('SIGKILL');
    await second?.exited;
    await closeEnv(env);
  }
}
