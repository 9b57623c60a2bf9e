import { createHash, createHmac, randomUUID, timingSafeEqual } from 'node:crypto';
import { AuthProxyError } from '../errors.js';
import type { ProxyConfig } from '../config/schema.js';
import type { RedisClient } from '../callbacks/redis-url.js';
import { duplicateClient } from '../callbacks/redis-url.js';
import { TENANT_ID, type IdentityFields } from './identity.js';

/** A sandbox's config as stored: validated, opaque values sealed, with a version that grows on every write. */
export interface StoredSandbox {
  readonly config: ProxyConfig;
  readonly version: number;
  /**
   * Unique per write (`version-nonce`): replicas compare stamps for equality, so a Redis that lost its
   * data and counts versions from 1 again can never make a replica keep a stale config.
   */
  readonly stamp: string;
  readonly updatedAt: number;
  /** The tenant the sandbox belongs to, when one was stored (else the serve default applies). */
  readonly tenantId?: string;
  readonly organizationId?: string;
}

/**
 * Where per-sandbox configs live in shared-service mode, so every replica serves every sandbox. Writes
 * bump a version and announce the id, so replicas recompile only what changed; `versions` lets a replica
 * resync after a missed announcement.
 */
export interface SandboxStore {
  get(id: string): Promise<StoredSandbox | undefined>;
  /**
   * Stores a config. With `expect`, only if the stored stamp is still that one (`null`: only if none is
   * stored); otherwise nothing is written and `undefined` is returned, so read-modify-write can't lose a
   * concurrent update.
   */
  put(id: string, config: ProxyConfig, expect?: string | null, identity?: IdentityFields): Promise<StoredSandbox | undefined>;
  delete(id: string): Promise<boolean>;
  /** Every stored sandbox id with its current stamp. */
  versions(): Promise<Map<string, string>>;
  /**
   * Calls `onChange(id)` for every write or delete on any replica, and `onConnected()` each time the
   * subscription is (re)established, when announcements may have been missed. Returns an unsubscribe.
   */
  subscribe(onChange: (id: string) => void, onConnected: () => void): Promise<() => Promise<void>>;
  /** Resolves when the store can answer (or after `ms`, whichever is first). */
  ready(ms: number): Promise<boolean>;
  close(): Promise<void>;
}

// Version bump, value write and announcement happen in one script, so no replica can see a value
// without its version or a version without its value.
const PUT = `
if ARGV[6] ~= '' then
  local cur = redis.call('HGET', KEYS[2], ARGV[1])
  if (ARGV[6] == '-' and cur) or (ARGV[6] ~= '-' and cur ~= ARGV[6]) then return false end
end
local v = redis.call('HINCRBY', KEYS[4], ARGV[1], 1)
local stamp = v .. '-' .. ARGV[4]
local doc = stamp .. string.char(10) .. ARGV[3] .. string.char(10) .. ARGV[5] .. string.char(10) .. ARGV[2]
redis.call('SET', KEYS[1], doc)
redis.call('HSET', KEYS[2], ARGV[1], stamp)
redis.call('PUBLISH', KEYS[3], ARGV[1])
return doc`;
const DELETE = `
local n = redis.call('DEL', KEYS[1])
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[4], ARGV[1])
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

  /**
   * `macKey` (shared by the replicas, derived from the sealing key) authenticates every stored config
   * bound to its sandbox id: a config planted or edited in Redis by anyone without it is refused, so Redis
   * write access alone can't point workspace secrets or sealed values at another host.
   */
  constructor(
    private readonly redis: RedisClient,
    prefix: string,
    private readonly macKey?: Buffer,
    private readonly clock: () => number = Date.now,
  ) {
    this.base = `${prefix}{sbx}:`;
    // Connection trouble surfaces as failed commands (the registry logs and retries at the next resync);
    // without a listener, ioredis would print every reconnect attempt as an unhandled error.
    redis.on('error', () => undefined);
  }

  private key(id: string): string {
    return `${this.base}cfg:${createHash('sha256').update(id).digest('hex').slice(0, 32)}:${id}`;
  }

  private get versionsKey(): string {
    return `${this.base}versions`;
  }

  private get seqKey(): string {
    return `${this.base}seq`;
  }

  private get channel(): string {
    return `${this.base}changes`;
  }

  ready(ms: number): Promise<boolean> {
    if (this.redis.status === 'ready') return Promise.resolve(true);
    return new Promise((resolve) => {
      const done = (ok: boolean) => {
        clearTimeout(timer);
        this.redis.off('ready', onReady);
        resolve(ok);
      };
      const onReady = () => done(true);
      const timer = setTimeout(() => done(false), ms);
      this.redis.on('ready', onReady);
    });
  }

  private mac(id: string, json: string): string {
    return this.macKey ? createHmac('sha256', this.macKey).update(`${id}\n${json}`).digest('base64url') : '-';
  }

  async get(id: string): Promise<StoredSandbox | undefined> {
    const raw = await this.redis.get(this.key(id));
    return raw === null ? undefined : this.parse(id, raw);
  }

  async put(id: string, config: ProxyConfig, expect?: string | null, identity: IdentityFields = {}): Promise<StoredSandbox | undefined> {
    // Record metadata first, then the config, one JSON line each (JSON.stringify never writes a raw newline):
    // the HMAC covers both, so the tenant is as authenticated as the config.
    const meta: { tenant_id?: string; organization_id?: string } = {};
    if (identity.tenantId !== undefined) meta.tenant_id = identity.tenantId;
    if (identity.organizationId !== undefined) meta.organization_id = identity.organizationId;
    const json = `${JSON.stringify(meta)}\n${JSON.stringify(config)}`;
    const condition = expect === undefined ? '' : expect === null ? '-' : expect;
    const raw = (await this.redis.eval(PUT, 4, this.key(id), this.versionsKey, this.channel, this.seqKey, id, json, String(this.clock()), randomUUID(), this.mac(id, json), condition)) as string | null;
    return raw === null ? undefined : this.parse(id, raw);
  }

  /**
   * Stored form: `stamp\nupdatedAt\nmac\nrecord JSON\nconfig JSON`, where the record holds `tenant_id` and
   * `organization_id`; records written before tenants existed lack that line. The MAC covers everything
   * after its own line, bound to the sandbox id. (Nothing is re-encoded by Lua's cjson.)
   */
  private parse(id: string, raw: string): StoredSandbox {
    const parts: number[] = [];
    for (let at = -1, n = 0; n < 3; n++) parts.push((at = raw.indexOf('\n', at + 1)));
    if (parts.some((p) => p < 0)) throw new AuthProxyError('config_invalid', `sandbox ${id}: stored config is malformed`);
    const [a, b, c] = parts as [number, number, number];
    const stamp = raw.slice(0, a);
    const mac = raw.slice(b + 1, c);
    const payload = raw.slice(c + 1);
    if (this.macKey) {
      const expected = Buffer.from(this.mac(id, payload));
      if (mac.length !== expected.length || !timingSafeEqual(Buffer.from(mac), expected)) {
        throw new AuthProxyError('config_invalid', `sandbox ${id}: stored config failed authentication (written without this deployment's key, or altered)`);
      }
    }
    const nl = payload.indexOf('\n');
    const stored = { stamp, version: parseInt(stamp, 10), updatedAt: Number(raw.slice(a + 1, b)), config: JSON.parse(nl < 0 ? payload : payload.slice(nl + 1)) as ProxyConfig };
    return nl < 0 ? stored : { ...stored, ...parseMeta(id, payload.slice(0, nl)) };
  }

  async delete(id: string): Promise<boolean> {
    return ((await this.redis.eval(DELETE, 4, this.key(id), this.versionsKey, this.channel, this.seqKey, id)) as number) > 0;
  }

  async versions(): Promise<Map<string, string>> {
    return new Map(Object.entries(await this.redis.hgetall(this.versionsKey)));
  }

  async subscribe(onChange: (id: string) => void, onConnected: () => void): Promise<() => Promise<void>> {
    const sub = duplicateClient(this.redis);
    this.subscriber = sub;
    sub.on('message', (channel: string, id: string) => {
      if (channel === this.channel) onChange(id);
    });
    sub.on('error', () => {
      /* reconnects by itself; the periodic resync heals what was missed */
    });
    const subscribe = () => {
      sub.subscribe(this.channel).then(onConnected, () => undefined);
    };
    sub.on('ready', subscribe);
    if (sub.status === 'ready') subscribe();
    return async () => {
      await sub.unsubscribe(this.channel).catch(() => undefined);
      sub.disconnect();
    };
  }

  /** Disconnects the subscriber and the client (the store owns the client it was given). */
  async close(): Promise<void> {
    this.subscriber?.disconnect();
    this.redis.disconnect();
  }
}

/** The record line of a stored sandbox: its tenant and organization, each checked like an API input. */
function parseMeta(id: string, line: string): IdentityFields {
  const meta = JSON.parse(line) as { tenant_id?: unknown; organization_id?: unknown };
  const out: { tenantId?: string; organizationId?: string } = {};
  for (const [key, field] of [['tenant_id', 'tenantId'], ['organization_id', 'organizationId']] as const) {
    const value = meta[key];
    if (value === undefined) continue;
    if (typeof value !== 'string' || !TENANT_ID.test(value)) throw new AuthProxyError('config_invalid', `sandbox ${id}: stored ${key} is malformed`);
    out[field] = value;
  }
  return out;
}
