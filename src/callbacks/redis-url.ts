import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis';
import { AuthProxyError } from '../errors.js';

/** A Redis client of any topology; both speak the same commands, events and `status`. */
export type RedisClient = Redis | Cluster;

/** Tuning of the clients; the defaults keep a request from ever waiting long on Redis. */
export interface RedisClientTuning {
  /** A command without a reply by then fails and the request falls back to memory + direct calls. */
  readonly commandTimeoutMs: number;
  readonly connectTimeoutMs: number;
}

/** 150 ms per command: Redis on the same network answers in well under 1 ms, a request must never hang on it. */
export const DEFAULT_REDIS_TUNING: RedisClientTuning = { commandTimeoutMs: 150, connectTimeoutMs: 2000 };

const USAGE =
  '--redis: expected redis://, rediss://, redis+sentinel://host:port[,host:port]/master or redis+cluster://host:port[,host:port]';
const MULTI =
  /^(rediss?)\+(sentinel|cluster):\/\/(?:([^:@/]*)(?::([^@/]*))?@)?([^/?@]+)(?:\/([^/?]*))?(?:\/(\d+))?(?:\?(.*))?$/;

/** Reconnect with exponential backoff (100 ms doubling, at most 2 s) plus jitter, forever. */
function backoff(times: number): number {
  return Math.min(100 * 2 ** Math.min(times, 5), 2000) + Math.floor(Math.random() * 100);
}

function common(tuning: RedisClientTuning): RedisOptions {
  return {
    commandTimeout: tuning.commandTimeoutMs,
    connectTimeout: tuning.connectTimeoutMs,
    // Fail at once instead of queueing while disconnected: the cache falls back to memory right away.
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    retryStrategy: backoff,
    connectionName: 'authproxy',
    // ioredis's own resubscription after a reconnect leaves its promise unhandled when the connection
    // drops again at once (an unhandled rejection); subscribers here resubscribe on 'ready' themselves.
    autoResubscribe: false,
  };
}

function hostList(list: string, defaultPort: number): Array<{ host: string; port: number }> {
  return list.split(',').map((item) => {
    const m = /^(\[[0-9a-fA-F:.]+\]|[^:,\s]+)(?::(\d{1,5}))?$/.exec(item);
    if (!m) throw new AuthProxyError('usage', USAGE);
    return { host: m[1]!.replace(/^\[|\]$/g, ''), port: Number(m[2] ?? defaultPort) };
  });
}

function decode(part: string | undefined): string | undefined {
  if (part === undefined || part === '') return undefined;
  try {
    return decodeURIComponent(part);
  } catch {
    throw new AuthProxyError('usage', USAGE);
  }
}

/**
 * Builds the command client for `--redis`. `redis://` and `rediss://` (TLS) go to ioredis as they are.
 * ioredis has no URL form for Sentinel or Cluster, so authproxy reads two of its own:
 * - `redis+sentinel://[user:password@]host:port[,host:port...]/MASTER[/DB][?sentinelPassword=…&sentinelUsername=…]`
 *   (user/password authenticate to the master and replicas; `rediss+sentinel://` uses TLS for all);
 * - `redis+cluster://[user:password@]host:port[,host:port...]` (`rediss+cluster://` for TLS); the key
 *   names share a hash tag per cache key, so every script touches a single slot.
 * Errors never echo the URL: it may hold a password.
 */
export function createRedisClient(url: string, tuning: RedisClientTuning = DEFAULT_REDIS_TUNING): RedisClient {
  const base = common(tuning);
  if (/^rediss?:\/\//i.test(url)) {
    try {
      new URL(url);
    } catch {
      throw new AuthProxyError('usage', USAGE);
    }
    return new Redis(url, base);
  }
  const m = MULTI.exec(url);
  if (!m) throw new AuthProxyError('usage', USAGE);
  const [, scheme, kind, user, password, hosts, master, db, query] = m;
  const params = new URLSearchParams(query ?? '');
  const tls = scheme === 'rediss' ? {} : undefined;
  const auth = { username: decode(user), password: decode(password) };
  const nodes = hostList(hosts!, kind === 'sentinel' ? 26379 : 6379);
  if (kind === 'sentinel') {
    if (!master) throw new AuthProxyError('usage', `${USAGE} (the master name is missing)`);
    return new Redis({
      ...base,
      ...auth,
      sentinels: nodes,
      name: decode(master),
      db: db ? Number(db) : undefined,
      sentinelUsername: params.get('sentinelUsername') ?? undefined,
      sentinelPassword: params.get('sentinelPassword') ?? undefined,
      tls,
      enableTLSForSentinelMode: tls !== undefined,
      sentinelTLS: tls,
      sentinelRetryStrategy: backoff,
    });
  }
  if (master || db) throw new AuthProxyError('usage', `${USAGE} (a cluster URL has no path)`);
  const { retryStrategy: _r, enableOfflineQueue: _q, ...redisOptions } = base;
  const options: ClusterOptions = {
    enableOfflineQueue: false,
    clusterRetryStrategy: backoff,
    redisOptions: { ...redisOptions, ...auth, tls },
  };
  return new Cluster(nodes, options);
}

/** A second connection like `client`, for pub/sub (a subscribed connection can't run other commands). */
export function duplicateClient(client: RedisClient): RedisClient {
  return client instanceof Cluster ? client.duplicate() : client.duplicate();
}
