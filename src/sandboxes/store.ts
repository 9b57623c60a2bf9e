import { createHash, randomUUID } from 'node:crypto';
import type { ProxyConfig } from '../config/schema.js';
import type { RedisClient } from '../callbacks/redis-url.js';
import { duplicateClient } from '../callbacks/redis-url.js';
import type { IdentityFields } from '../contracts/identity.js';
import { decodeRecord, encodeRecord, type RecordOrder } from './record.js';
import { RedisLinkStore } from './link-store.js';

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
  /**
   * Where the write sits in the store's history (authenticated with the record): replicas refuse a record
   * older than one they have applied, so an old record replayed into Redis can't bring back an old config.
   * Undefined for records written before it existed.
   */
  readonly order?: RecordOrder;
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
  put(
    id: string,
    config: ProxyConfig,
    expect?: string | null,
    identity?: IdentityFields,
  ): Promise<StoredSandbox | undefined>;
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

// A write reads where it will sit first (the data set's epoch, created on first use, one number of the
// write counter and the sandbox's current version), so that the record it authenticates can name them.
const PREPARE = `
redis.call('SET', KEYS[1], ARGV[1], 'NX')
return {redis.call('GET', KEYS[1]), redis.call('INCR', KEYS[2]), redis.call('HGET', KEYS[3], ARGV[2]) or '0'}`;
// Version bump, value write and announcement happen in one script, so no replica can see a value
// without its version or a version without its value. 'retry' when another write (or a new epoch) came
// between PREPARE and this script: the record names a place that is no longer next.
const PUT = `
if ARGV[6] ~= '' then
  local cur = redis.call('HGET', KEYS[2], ARGV[1])
  if (ARGV[6] == '-' and cur) or (ARGV[6] ~= '-' and cur ~= ARGV[6]) then return false end
end
if redis.call('GET', KEYS[5]) ~= ARGV[5] or (redis.call('HGET', KEYS[4], ARGV[1]) or '0') ~= ARGV[7] then return 'retry' end
redis.call('HSET', KEYS[4], ARGV[1], ARGV[4])
redis.call('SET', KEYS[1], ARGV[2])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
redis.call('PUBLISH', KEYS[3], ARGV[1])
return 1`;
const PUT_ATTEMPTS = 5;
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
   * bound to its sandbox id, stamp and place in the store's history: a config planted or edited in Redis
   * by anyone without it is refused, so Redis write access alone can't point workspace secrets or sealed
   * values at another host, and an older record put back is recognised as older (the registry refuses it).
   */
  constructor(
    private readonly redis: RedisClient,
    private readonly prefix: string,
    private readonly macKey?: Buffer,
    private readonly clock: () => number = Date.now,
  ) {
    this.base = `${prefix}{sbx}:`;
    // Connection trouble surfaces as failed commands (the registry logs and retries at the next resync);
    // without a listener, ioredis would print every reconnect attempt as an unhandled error.
    redis.on('error', () => undefined);
  }

  /** The sandbox links and addresses kept beside these configs (same client, key, epoch, order and channel). */
  linkStore(): RedisLinkStore {
    return new RedisLinkStore(this.redis, this.prefix, this.macKey, this.clock);
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

  /** When this data set began (ms): a Redis that lost its data starts a later epoch. */
  private get epochKey(): string {
    return `${this.base}epoch`;
  }

  /** Counts every write of the data set, across sandboxes (deleting a sandbox never resets it). */
  private get orderKey(): string {
    return `${this.base}order`;
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

  async get(id: string): Promise<StoredSandbox | undefined> {
    const raw = await this.redis.get(this.key(id));
    return raw === null ? undefined : decodeRecord(this.macKey, id, raw);
  }

  /**
   * Writes a record authenticated with everything it says (src/sandboxes/record.ts): the config, the
   * tenant, the stamp and its place in the store's history. (Nothing is re-encoded by Lua's cjson.)
   */
  async put(
    id: string,
    config: ProxyConfig,
    expect?: string | null,
    identity: IdentityFields = {},
  ): Promise<StoredSandbox | undefined> {
    const condition = expect === undefined ? '' : expect === null ? '-' : expect;
    for (let attempt = 0; attempt < PUT_ATTEMPTS; attempt++) {
      const [epoch, seq, current] = (await this.redis.eval(
        PREPARE,
        3,
        this.epochKey,
        this.orderKey,
        this.seqKey,
        String(this.clock()),
        id,
      )) as [string, number, string];
      const version = Number(current) + 1;
      const stamp = `${version}-${randomUUID()}`;
      const raw = encodeRecord(this.macKey, id, {
        stamp,
        updatedAt: this.clock(),
        order: { epoch: Number(epoch), seq: Number(seq) },
        identity,
        config,
      });
      const done = await this.redis.eval(
        PUT,
        5,
        this.key(id),
        this.versionsKey,
        this.channel,
        this.seqKey,
        this.epochKey,
        id,
        raw,
        stamp,
        String(version),
        epoch,
        condition,
        current,
      );
      if (done === null) return undefined;
      if (done !== 'retry') return decodeRecord(this.macKey, id, raw);
    }
    // Writers kept overtaking this one: answered like a failed condition (the API's 409), so the caller retries.
    return undefined;
  }

  async delete(id: string): Promise<boolean> {
    return (
      ((await this.redis.eval(DELETE, 4, this.key(id), this.versionsKey, this.channel, this.seqKey, id)) as number) > 0
    );
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
