import { createHash } from 'node:crypto';
import type { ProxyConfig } from '../config/schema.js';
import type { RedisClient } from '../callbacks/redis-url.js';
import { duplicateClient } from '../callbacks/redis-url.js';

/** A sandbox's config as stored: validated, opaque values sealed, with a version that grows on every write. */
export interface StoredSandbox {
  readonly config: ProxyConfig;
  readonly version: number;
  readonly updatedAt: number;
}

/**
 * Where per-sandbox configs live in shared-service mode, so every replica serves every sandbox. Writes
 * bump a version and announce the id, so replicas recompile only what changed; `versions` lets a replica
 * resync after a missed announcement.
 */
export interface SandboxStore {
  get(id: string): Promise<StoredSandbox | undefined>;
  put(id: string, config: ProxyConfig): Promise<StoredSandbox>;
  delete(id: string): Promise<boolean>;
  /** Every stored sandbox id with its version. */
  versions(): Promise<Map<string, number>>;
  /** Calls `onChange(id)` for every write or delete on any replica; returns an unsubscribe function. */
  subscribe(onChange: (id: string) => void): Promise<() => Promise<void>>;
  close(): Promise<void>;
}

// Version bump, value write and announcement happen in one script, so no replica can see a value
// without its version or a version without its value.
const PUT = `
local v = redis.call('HINCRBY', KEYS[2], ARGV[1], 1)
local doc = v .. '\n' .. ARGV[3] .. '\n' .. ARGV[2]
redis.call('SET', KEYS[1], doc)
redis.call('PUBLISH', KEYS[3], ARGV[1])
return doc`;
const DELETE = `
local n = redis.call('DEL', KEYS[1])
redis.call('HDEL', KEYS[2], ARGV[1])
if n > 0 then redis.call('PUBLISH', KEYS[3], ARGV[1]) end
return n`;

/**
 * The Redis-backed store. Keys live under `{prefix}sbx:` with a hash tag, so a Redis Cluster keeps them
 * in one slot and the scripts stay single-slot. Values hold sealed opaque values only: a Redis dump
 * reveals no plaintext secret.
 */
export class RedisSandboxStore implements SandboxStore {
  private readonly base: string;
  private subscriber: RedisClient | undefined;

  constructor(
    private readonly redis: RedisClient,
    prefix: string,
    private readonly clock: () => number = Date.now,
  ) {
    this.base = `${prefix}{sbx}:`;
  }

  private key(id: string): string {
    return `${this.base}cfg:${createHash('sha256').update(id).digest('hex').slice(0, 32)}:${id}`;
  }

  private get versionsKey(): string {
    return `${this.base}versions`;
  }

  private get channel(): string {
    return `${this.base}changes`;
  }

  async get(id: string): Promise<StoredSandbox | undefined> {
    const raw = await this.redis.get(this.key(id));
    return raw === null ? undefined : parseStored(raw);
  }

  async put(id: string, config: ProxyConfig): Promise<StoredSandbox> {
    const raw = (await this.redis.eval(PUT, 3, this.key(id), this.versionsKey, this.channel, id, JSON.stringify(config), String(this.clock()))) as string;
    return parseStored(raw)!;
  }

  async delete(id: string): Promise<boolean> {
    return ((await this.redis.eval(DELETE, 3, this.key(id), this.versionsKey, this.channel, id)) as number) > 0;
  }

  async versions(): Promise<Map<string, number>> {
    const all = await this.redis.hgetall(this.versionsKey);
    return new Map(Object.entries(all).map(([id, v]) => [id, Number(v)]));
  }

  async subscribe(onChange: (id: string) => void): Promise<() => Promise<void>> {
    const sub = duplicateClient(this.redis);
    this.subscriber = sub;
    sub.on('message', (channel: string, id: string) => {
      if (channel === this.channel) onChange(id);
    });
    sub.on('error', () => {
      /* reconnects by itself; the periodic resync heals what was missed */
    });
    await sub.subscribe(this.channel);
    return async () => {
      await sub.unsubscribe(this.channel).catch(() => undefined);
      sub.disconnect();
    };
  }

  async close(): Promise<void> {
    this.subscriber?.disconnect();
  }
}

/** Stored form: `version\nupdatedAt\nconfig JSON` (the config is never re-encoded by Lua's cjson). */
function parseStored(raw: string): StoredSandbox | undefined {
  const first = raw.indexOf('\n');
  const second = raw.indexOf('\n', first + 1);
  if (first < 0 || second < 0) return undefined;
  return { version: Number(raw.slice(0, first)), updatedAt: Number(raw.slice(first + 1, second)), config: JSON.parse(raw.slice(second + 1)) as ProxyConfig };
}
