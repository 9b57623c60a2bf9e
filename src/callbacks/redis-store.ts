import type { RedisClient } from './redis-url.js';

/** What the acquire script found for one key. */
export type AcquireResult =
  | { readonly kind: 'value'; readonly value: string }
  | { readonly kind: 'failed'; readonly reason: string }
  | { readonly kind: 'acquired'; readonly value: string | undefined }
  | { readonly kind: 'held'; readonly token: string; readonly pttl: number };

// Keys: value, lock, fail marker of the attempt the caller waited for. Args: token, lock ms, skip value.
// Re-entrant: a caller whose earlier acquire timed out on its side but ran on the server holds the lock.
const ACQUIRE = `
if ARGV[3] == '0' then
  local v = redis.call('GET', KEYS[1])
  if v then return {'value', v} end
end
local f = redis.call('GET', KEYS[3])
if f then return {'failed', f} end
local holder = redis.call('GET', KEYS[2])
if not holder or holder == ARGV[1] then
  redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[2])
  return {'acquired', redis.call('GET', KEYS[1]) or ''}
end
return {'held', holder, redis.call('PTTL', KEYS[2])}`;

// Keys: value, lock. Args: sealed value, absolute expiry (epoch ms), token, channel, notice.
const COMMIT = `
redis.call('SET', KEYS[1], ARGV[1])
redis.call('PEXPIREAT', KEYS[1], ARGV[2])
if redis.call('GET', KEYS[2]) == ARGV[3] then redis.call('DEL', KEYS[2]) end
redis.call('PUBLISH', ARGV[4], ARGV[5])
return 1`;

// Keys: lock, own fail marker. Args: token, failure reason ('' = none), marker ms, channel, notice.
const ABORT = `
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
if ARGV[2] ~= '' then redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3]) end
redis.call('PUBLISH', ARGV[4], ARGV[5])
return 1`;

type Script = (...args: Array<string | number>) => Promise<unknown>;
interface Scripted {
  authproxyAcquire: Script;
  authproxyCommit: Script;
  authproxyAbort: Script;
}

/** How long a failure marker lives: long enough for every waiter of that attempt to read it. */
const FAIL_MARKER_MS = 5000;

/**
 * The Redis side of the shared cache: three Lua scripts, each atomic and each touching the keys of one
 * cache key only (they share the hash tag `{name}`, so this also holds on Redis Cluster).
 * - `acquire`: read the value; else report the failure of the attempt the caller waited for; else take
 *   the lock if free or already the caller's (random token, deadline) and return whatever value is
 *   there now; else name the holder and its remaining time.
 * - `commit`: store the sealed value with an absolute expiry (`PEXPIREAT`, so it vanishes at the same
 *   moment for every replica), release the lock if still ours, publish a notice.
 * - `abort`: release the lock if still ours, leave a failure marker (reason only, never a value) for
 *   the waiters of this attempt, publish a notice.
 * Notices only wake waiters up: they re-read the keys, so a lost or forged notice changes nothing.
 */
export class FleetStore {
  private readonly scripts: Scripted;
  readonly channel: string;

  constructor(
    client: RedisClient,
    private readonly prefix: string,
  ) {
    client.defineCommand('authproxyAcquire', { numberOfKeys: 3, lua: ACQUIRE });
    client.defineCommand('authproxyCommit', { numberOfKeys: 2, lua: COMMIT });
    client.defineCommand('authproxyAbort', { numberOfKeys: 2, lua: ABORT });
    this.scripts = client as unknown as Scripted;
    this.channel = `${prefix}notices`;
  }

  /** The Redis key that holds the sealed value of `name` (also the value's additional authenticated data). */
  valueKey(name: string): string {
    return `${this.prefix}{${name}}:v`;
  }

  private lockKey(name: string): string {
    return `${this.prefix}{${name}}:lock`;
  }

  private failKey(name: string, token: string): string {
    return `${this.prefix}{${name}}:fail:${token}`;
  }

  async acquire(
    name: string,
    token: string,
    lockMs: number,
    skipValue: boolean,
    waitedFor: string,
  ): Promise<AcquireResult> {
    const reply = await this.scripts.authproxyAcquire(
      this.valueKey(name),
      this.lockKey(name),
      this.failKey(name, waitedFor),
      token,
      lockMs,
      skipValue ? '1' : '0',
    );
    return parseAcquire(reply);
  }

  async commit(name: string, sealed: string, expiresAt: number, token: string): Promise<void> {
    await this.scripts.authproxyCommit(
      this.valueKey(name),
      this.lockKey(name),
      sealed,
      Math.floor(expiresAt),
      token,
      this.channel,
      name,
    );
  }

  async abort(name: string, token: string, reason: string): Promise<void> {
    await this.scripts.authproxyAbort(
      this.lockKey(name),
      this.failKey(name, token),
      token,
      reason,
      FAIL_MARKER_MS,
      this.channel,
      name,
    );
  }
}

function parseAcquire(reply: unknown): AcquireResult {
  const r = Array.isArray(reply) ? reply : [];
  const str = (i: number) =>
    typeof r[i] === 'string' ? (r[i] as string) : Buffer.isBuffer(r[i]) ? (r[i] as Buffer).toString() : '';
  switch (str(0)) {
    case 'value':
      return { kind: 'value', value: str(1) };
    case 'failed':
      return { kind: 'failed', reason: str(1) };
    case 'acquired':
      return { kind: 'acquired', value: str(1) || undefined };
    case 'held':
      return { kind: 'held', token: str(1), pttl: Math.max(0, Number(r[2]) || 0) };
    default:
      throw new Error('unexpected reply from the acquire script');
  }
}
