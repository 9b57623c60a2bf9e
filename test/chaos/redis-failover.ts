/**
 * Real multi-node Redis topologies on loopback for `npm run chaos`: a 3-master Cluster with one replica
 * each (six `redis-server --cluster-enabled yes`, joined by `redis-cli --cluster create`), and a Sentinel
 * set (1 master, 1 replica, 3 sentinels). Each can lose its master mid-run.
 */
import { spawnSync } from 'node:child_process';
import { startRedis, startSentinel, type RedisServer } from '../helpers/redis.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function cli(port: number, ...args: string[]): string {
  const r = spawnSync('redis-cli', ['-p', String(port), ...args], { timeout: 10_000 });
  return r.stdout?.toString() ?? '';
}

async function until(what: string, ms: number, check: () => boolean): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

export async function startRedisCluster() {
  const nodes: RedisServer[] = [];
  for (let i = 0; i < 6; i++)
    nodes.push(
      await startRedis([
        '--cluster-enabled',
        'yes',
        '--cluster-config-file',
        'nodes.conf',
        '--cluster-node-timeout',
        '1000',
        '--cluster-announce-ip',
        '127.0.0.1',
      ]),
    );
  const create = spawnSync(
    'redis-cli',
    ['--cluster', 'create', ...nodes.map((n) => `127.0.0.1:${n.port}`), '--cluster-replicas', '1', '--cluster-yes'],
    { timeout: 60_000 },
  );
  if (create.status !== 0) throw new Error(`redis-cli --cluster create failed: ${create.stdout}${create.stderr}`);
  const allOk = (ns: RedisServer[]) => ns.every((n) => cli(n.port, 'CLUSTER', 'INFO').includes('cluster_state:ok'));
  await until('cluster_state:ok', 30_000, () => allOk(nodes));
  // Replicas must have synced before a failover can promote one.
  await until(
    'replicas in sync',
    30_000,
    () =>
      nodes.filter((n) => cli(n.port, 'ROLE').startsWith('slave')).length === 3 &&
      nodes
        .filter((n) => cli(n.port, 'ROLE').startsWith('slave'))
        .every((n) => cli(n.port, 'INFO', 'replication').includes('master_link_status:up')),
  );
  const masters = () => nodes.filter((n) => n.running && cli(n.port, 'ROLE').startsWith('master'));
  return {
    url: `redis+cluster://${nodes
      .slice(0, 3)
      .map((n) => `127.0.0.1:${n.port}`)
      .join(',')}`,
    nodes,
    /** SIGKILLs one master and resolves once a replica has taken its slots and the cluster is ok again. */
    async killMasterAndWaitForFailover(): Promise<{ killed: number }> {
      const victim = masters()[0]!;
      await victim.stop();
      const rest = nodes.filter((n) => n.running);
      await until('a replica to be promoted', 30_000, () => masters().length === 3 && allOk(rest));
      return { killed: victim.port };
    },
    async close() {
      await Promise.all(nodes.map((n) => n.close()));
    },
  };
}

export async function startRedisSentinel() {
  const master = await startRedis();
  const replica = await startRedis(['--replicaof', '127.0.0.1', String(master.port)]);
  await until('replica sync', 20_000, () => cli(replica.port, 'INFO', 'replication').includes('master_link_status:up'));
  const sentinels: RedisServer[] = [];
  for (let i = 0; i < 3; i++) sentinels.push(await startSentinel(master.port));
  await until('sentinels to see the replica', 30_000, () =>
    sentinels.every((s) => cli(s.port, 'SENTINEL', 'REPLICAS', 'mymaster').includes(String(replica.port))),
  );
  const masterPort = () =>
    cli(sentinels[0]!.port, 'SENTINEL', 'GET-MASTER-ADDR-BY-NAME', 'mymaster').split('\n')[1]?.trim();
  return {
    url: `redis+sentinel://${sentinels.map((s) => `127.0.0.1:${s.port}`).join(',')}/mymaster`,
    /** `SENTINEL FAILOVER mymaster`; resolves when the sentinels name the replica and it is a master. */
    async failover(): Promise<void> {
      const r = cli(sentinels[0]!.port, 'SENTINEL', 'FAILOVER', 'mymaster');
      if (!r.startsWith('OK')) throw new Error(`SENTINEL FAILOVER: ${r.trim()}`);
      await until(
        'the failover',
        30_000,
        () => masterPort() === String(replica.port) && cli(replica.port, 'ROLE').startsWith('master'),
      );
    },
    async close() {
      await Promise.all([...sentinels, replica, master].map((n) => n.close()));
    },
  };
}
