/**
 * Real redis-server processes for tests and benchmarks: each on a free port of 127.0.0.1, no persistence
 * (`--save '' --appendonly no`), stoppable and restartable on the same port so a test can take Redis
 * away mid-run and bring it back. Every process started here is killed when the test process exits.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { SharedCredentialCache } from '../../src/callbacks/shared-cache.js';
import { CacheSealer } from '../../src/callbacks/cache-crypto.js';
import { CallbackResolver } from '../../src/callbacks/resolver.js';
import { CallbackSigner } from '../../src/callbacks/signer.js';
import { DEFAULT_CALLBACK_LIMITS } from '../../src/callbacks/client.js';
import { Metrics } from '../../src/metrics/metrics.js';
import { captureLogs } from './logs.js';

/** The redis-server binary: $REDIS_SERVER, else the one on PATH, else /usr/bin/redis-server. */
export const REDIS_SERVER =
  process.env.REDIS_SERVER ??
  (spawnSync('sh', ['-c', 'command -v redis-server']).stdout?.toString().trim() || '/usr/bin/redis-server');

const running = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

/** A free TCP port on 127.0.0.1 (bound and released; the caller binds it right away). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}

/** Resolves when `host:port` answers PING with PONG; rejects after `ms`. */
export async function waitForPong(port: number, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = new Socket();
      const t = setTimeout(() => {
        s.destroy();
        resolve(false);
      }, 500);
      s.once('error', () => {
        clearTimeout(t);
        resolve(false);
      });
      s.connect(port, '127.0.0.1', () => s.write('PING\r\n'));
      s.once('data', (d) => {
        clearTimeout(t);
        s.destroy();
        resolve(d.toString().startsWith('+PONG'));
      });
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`redis-server on port ${port} did not answer PING within ${ms} ms`);
}

/** One redis-server process under test control. */
export interface RedisServer {
  readonly port: number;
  /** `redis://127.0.0.1:PORT` */
  readonly url: string;
  readonly running: boolean;
  /** Stops the process (SIGKILL, like a crash: connections drop at once). */
  stop(): Promise<void>;
  /** Starts it again on the same port, with an empty data set. */
  start(): Promise<void>;
  /** Stops it for good and removes its directory. */
  close(): Promise<void>;
}

/**
 * Starts a redis-server; `args` are extra command-line options (e.g. `['--cluster-enabled', 'yes']`).
 * `configFile` (written into the server's directory) comes first, as Sentinel needs a writable config.
 */
export async function startRedis(args: string[] = [], configFile?: string): Promise<RedisServer> {
  if (!existsSync(REDIS_SERVER)) throw new Error(`redis-server not found at ${REDIS_SERVER}; set REDIS_SERVER`);
  const dir = mkdtempSync(join(tmpdir(), 'authproxy-redis-'));
  let port = 0;
  let child: ChildProcess | undefined;
  let output = '';

  const launch = async (): Promise<void> => {
    output = '';
    const config = configFile === undefined ? [] : [join(dir, 'redis.conf')];
    if (configFile !== undefined) writeFileSync(config[0]!, configFile);
    const proc = spawn(
      REDIS_SERVER,
      [
        ...config,
        '--port',
        String(port),
        '--bind',
        '127.0.0.1',
        '--save',
        '',
        '--appendonly',
        'no',
        '--dir',
        dir,
        '--protected-mode',
        'no',
        ...args,
      ],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    child = proc;
    running.add(proc);
    proc.stdout!.on('data', (d: Buffer) => (output += d.toString()));
    proc.stderr!.on('data', (d: Buffer) => (output += d.toString()));
    proc.once('exit', () => running.delete(proc));
    try {
      await waitForPong(port);
    } catch (err) {
      proc.kill('SIGKILL');
      throw new Error(`${(err as Error).message}\n${output.slice(-2000)}`);
    }
  };

  const stop = async () => {
    const proc = child;
    child = undefined;
    if (!proc || proc.exitCode !== null) return;
    await new Promise<void>((r) => {
      proc.once('exit', () => r());
      proc.kill('SIGKILL');
    });
  };

  for (let attempt = 0; ; attempt++) {
    port = await freePort();
    try {
      await launch();
      break;
    } catch (err) {
      if (attempt >= 2) throw err;
    }
  }
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    get running() {
      return child !== undefined && child.exitCode === null;
    },
    stop,
    start: launch,
    close: async () => {
      await stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A Sentinel watching the master on `masterPort` under the name `mymaster` (quorum 1). */
export function startSentinel(masterPort: number): Promise<RedisServer> {
  return startRedis(
    ['--sentinel'],
    `sentinel monitor mymaster 127.0.0.1 ${masterPort} 1\nsentinel resolve-hostnames yes\n`,
  );
}

/** A one-node Redis Cluster that owns every slot (enough to exercise the Cluster client and hash tags). */
export async function startClusterNode(): Promise<RedisServer> {
  const node = await startRedis([
    '--cluster-enabled',
    'yes',
    '--cluster-config-file',
    'nodes.conf',
    '--cluster-announce-ip',
    '127.0.0.1',
  ]);
  const admin = new Redis(node.url);
  try {
    await admin.call('CLUSTER', 'ADDSLOTSRANGE', '0', '16383');
    const end = Date.now() + 10_000;
    while (!String(await admin.call('CLUSTER', 'INFO')).includes('cluster_state:ok')) {
      if (Date.now() > end) throw new Error('the one-node cluster did not become ready');
      await new Promise((r) => setTimeout(r, 50));
    }
  } finally {
    admin.disconnect();
  }
  return node;
}

// ---- replicas: several shared caches in one process, each with its own connections, metrics and logs ----

/** One authproxy replica as far as callbacks go: its cache, resolver, metrics and captured logs. */
export interface Replica {
  readonly cache: SharedCredentialCache;
  readonly resolver: CallbackResolver;
  readonly metrics: Metrics;
  readonly logs: () => string;
}

/** How `startFleet` builds its replicas; everything but `url` has a test-friendly default. */
export interface FleetOptions {
  readonly url: string;
  readonly count?: number;
  readonly sealer?: CacheSealer;
  readonly clock?: () => number;
  readonly lockMs?: number;
  readonly timeoutMs?: number;
  readonly prefix?: string;
  readonly refreshRetryMs?: number;
}

/** A test cache key shared by every fleet unless a test brings its own sealer. */
export const TEST_SEALER = CacheSealer.fromKey(Buffer.alloc(32, 7));

/** Starts `count` replicas (default 3) against one Redis and waits until each is connected. */
export async function startFleet(opts: FleetOptions): Promise<{ replicas: Replica[]; close(): Promise<void> }> {
  const signer = await CallbackSigner.ephemeral();
  const replicas = Array.from({ length: opts.count ?? 3 }, (): Replica => {
    const metrics = new Metrics();
    const { log, text } = captureLogs('debug');
    const cache = SharedCredentialCache.connect({
      url: opts.url,
      sealer: opts.sealer ?? TEST_SEALER,
      log,
      metrics,
      clock: opts.clock,
      lockMs: opts.lockMs ?? 3000,
      prefix: opts.prefix,
      refreshRetryMs: opts.refreshRetryMs,
    });
    const resolver = new CallbackResolver(
      cache,
      signer,
      { ...DEFAULT_CALLBACK_LIMITS, timeoutMs: opts.timeoutMs ?? 2000 },
      metrics,
    );
    return { cache, resolver, metrics, logs: text };
  });
  const close = async () => void (await Promise.all(replicas.map((r) => r.cache.close())));
  const ready = await Promise.all(replicas.map((r) => r.cache.ready(10_000)));
  if (!ready.every(Boolean)) {
    await close();
    throw new Error('a replica did not connect to Redis');
  }
  return { replicas, close };
}

/** Sum over replicas of one series in their /metrics text, e.g. `authproxy_callback_calls_total{result="ok"}`. */
export async function fleetMetric(replicas: readonly Replica[], series: string): Promise<number> {
  let sum = 0;
  for (const r of replicas) {
    for (const line of (await r.metrics.exposition()).body.split('\n')) {
      if (line.startsWith(`${series} `)) sum += Number(line.slice(series.length + 1));
    }
  }
  return sum;
}
