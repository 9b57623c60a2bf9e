import { createHash, createHmac, randomUUID, timingSafeEqual } from 'node:crypto';
import { isIP } from 'node:net';
import { AuthProxyError } from '../errors.js';
import { SANDBOX_ID } from '../contracts/envoy.js';
import type { RedisClient } from '../callbacks/redis-url.js';
import type { RecordOrder } from './record.js';

/**
 * Where a sandbox's own services listen and which other sandboxes it may reach (shared-service mode):
 * the network facts that a `rewrite: {sandbox, port}` rule needs, one record per sandbox, kept in Redis
 * beside the configs, authenticated and ordered like them, and announced on the same channel.
 */

/** One sandbox's network record: its address (an IP literal, set by the orchestrator) and its outgoing links. */
export interface SandboxNet {
  readonly address?: string;
  /** Target sandbox id -> the ports of it this sandbox may reach (sorted, unique). */
  readonly links: Readonly<Record<string, readonly number[]>>;
}

/** A network record as stored: the facts plus the stamp and place in history that authenticate it. */
export interface StoredNet extends SandboxNet {
  readonly stamp: string;
  readonly order: RecordOrder;
}

/** The prefix of a network record's announcement on the configs' channel (`net/<id>`; `/` is never in an id). */
export const NET_ANNOUNCEMENT = 'net/';

/** Most links one sandbox may hold, and most ports per link: bounds on what every replica keeps in memory. */
export const MAX_LINKS = 256;
export const MAX_LINK_PORTS = 64;

/** The ports of `from`'s link to `to`, or undefined (own properties only: `constructor` is a valid sandbox id). */
export function linkPorts(net: SandboxNet | undefined, to: string): readonly number[] | undefined {
  return net && Object.hasOwn(net.links, to) ? net.links[to] : undefined;
}

/** Why `net` can't be a network record (one line naming the field), or undefined. Shared by the API and the decoder. */
export function netProblem(net: SandboxNet): string | undefined {
  if (net.address !== undefined && (typeof net.address !== 'string' || isIP(net.address) === 0))
    return 'address: must be an IP address';
  const targets = Object.entries(net.links ?? {});
  if (targets.length > MAX_LINKS) return `links: at most ${MAX_LINKS} per sandbox`;
  for (const [to, ports] of targets) {
    if (!SANDBOX_ID.test(to)) return 'links: a target is not a sandbox id';
    if (!Array.isArray(ports) || ports.length === 0 || ports.length > MAX_LINK_PORTS)
      return `links.${to}: 1..${MAX_LINK_PORTS} ports`;
    if (!ports.every((p) => Number.isInteger(p) && p >= 1 && p <= 65535)) return `links.${to}: ports are 1..65535`;
  }
  return undefined;
}

// The same first step as a config write (src/sandboxes/store.ts): the data set's epoch, a number of the
// shared write counter, and this record's current stamp (for the compare-and-set).
const PREPARE = `
redis.call('SET', KEYS[1], ARGV[1], 'NX')
return {redis.call('GET', KEYS[1]), redis.call('INCR', KEYS[2]), redis.call('HGET', KEYS[3], ARGV[2]) or '-'}`;
// Written only if the record is still the one read (ARGV[4]) and the epoch unchanged; stamp, value and
// announcement in one script, as for configs.
const PUT = `
if (redis.call('HGET', KEYS[2], ARGV[1]) or '-') ~= ARGV[4] then return false end
if redis.call('GET', KEYS[4]) ~= ARGV[5] then return false end
redis.call('SET', KEYS[1], ARGV[2])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
redis.call('PUBLISH', KEYS[3], ARGV[6])
return 1`;

/**
 * The Redis half of sandbox links: `{prefix}{sbx}:net:<hash>:<id>` records, their stamps in
 * `{prefix}{sbx}:netversions`, the configs' epoch and write counter (so a record's order compares with
 * every other write), and `net/<id>` announcements on the configs' channel. A record is never deleted,
 * only emptied, so an old one put back is always recognisably older.
 */
export class RedisLinkStore {
  private readonly base: string;

  /** `macKey`: the key the replicas authenticate config records with (derived from the sealing key). */
  constructor(
    private readonly redis: RedisClient,
    prefix: string,
    private readonly macKey: Buffer | undefined,
    private readonly clock: () => number = Date.now,
  ) {
    this.base = `${prefix}{sbx}:`;
  }

  private key(id: string): string {
    return `${this.base}net:${createHash('sha256').update(id).digest('hex').slice(0, 32)}:${id}`;
  }

  async get(id: string): Promise<StoredNet | undefined> {
    const raw = await this.redis.get(this.key(id));
    return raw === null ? undefined : decodeNet(this.macKey, id, raw);
  }

  /**
   * Writes `change(current)` if no other write to this sandbox's record came in between (retried a few
   * times, then undefined: the API's 409). Returns the record written.
   */
  async update(id: string, change: (current: SandboxNet) => SandboxNet): Promise<StoredNet | undefined> {
    for (let attempt = 0; attempt < 5; attempt++) {
      const [epoch, seq, stamp] = (await this.redis.eval(
        PREPARE,
        3,
        `${this.base}epoch`,
        `${this.base}order`,
        `${this.base}netversions`,
        String(this.clock()),
        id,
      )) as [string, number, string];
      const current = stamp === '-' ? { links: {} } : ((await this.get(id)) ?? { links: {} });
      const next = change(current);
      const written = { ...next, stamp: `${randomUUID()}`, order: { epoch: Number(epoch), seq: Number(seq) } };
      const raw = encodeNet(this.macKey, id, written);
      const done = await this.redis.eval(
        PUT,
        4,
        this.key(id),
        `${this.base}netversions`,
        `${this.base}changes`,
        `${this.base}epoch`,
        id,
        raw,
        written.stamp,
        stamp,
        epoch,
        `${NET_ANNOUNCEMENT}${id}`,
      );
      if (done !== null) return decodeNet(this.macKey, id, raw);
    }
    return undefined;
  }

  /** Every sandbox with a network record -> its stamp (the periodic resync compares them). */
  async versions(): Promise<Map<string, string>> {
    return new Map(Object.entries(await this.redis.hgetall(`${this.base}netversions`)));
  }
}

function mac(key: Buffer, id: string, head: string, json: string): string {
  return createHmac('sha256', key).update(`net1\n${id}\n${head}\n${json}`).digest('base64url');
}

/** `stamp\nepoch.seq\nMAC\nJSON`; the MAC covers the sandbox id and every other line (`-` without a key). */
export function encodeNet(macKey: Buffer | undefined, id: string, net: StoredNet): string {
  const json = JSON.stringify({ ...(net.address !== undefined ? { address: net.address } : {}), links: net.links });
  const head = `${net.stamp}\n${net.order.epoch}.${net.order.seq}`;
  return `${head}\n${macKey ? mac(macKey, id, head, json) : '-'}\n${json}`;
}

/** Decodes and authenticates a network record; a malformed or forged one is an error (the replica then drops what it held). */
export function decodeNet(macKey: Buffer | undefined, id: string, raw: string): StoredNet {
  const bad = (why: string) => new AuthProxyError('config_invalid', `sandbox ${id}: stored links ${why}`);
  const [stamp, order, given, json, extra] = raw.split('\n');
  const at = /^(\d{1,16})\.(\d{1,16})$/.exec(order ?? '');
  if (stamp === undefined || !at || given === undefined || json === undefined || extra !== undefined)
    throw bad('are malformed');
  if (macKey) {
    const want = Buffer.from(mac(macKey, id, `${stamp}\n${order}`, json));
    if (given.length !== want.length || !timingSafeEqual(Buffer.from(given), want))
      throw bad("failed authentication (written without this deployment's key, or altered)");
  }
  let net: SandboxNet;
  try {
    net = JSON.parse(json) as SandboxNet;
  } catch {
    throw bad('are malformed');
  }
  if (typeof net !== 'object' || net === null || typeof net.links !== 'object' || net.links === null || netProblem(net))
    throw bad('are malformed');
  return {
    ...(net.address !== undefined ? { address: net.address } : {}),
    links: net.links,
    stamp,
    order: { epoch: Number(at[1]), seq: Number(at[2]) },
  };
}
