import { describe, expect, it } from 'vitest';
import type { Leaf, LeafMinter, MintOptions } from '../../src/sds/ca.js';
import { EXPIRY_MARGIN_MS, LeafCache, renewalTime } from '../../src/sds/leaf-cache.js';
import { captureLogs } from '../helpers/logs.js';
import { ManualClock } from '../helpers/sds-clock.js';

const HOUR = 3_600_000;
const LIFETIME = 24 * HOUR;

/**
 * A minter that records calls and hands out numbered fake leaves. With `hold`, each mint waits until
 * `release()` so a test can look at the cache while a mint is in flight; `failNext` makes one fail.
 */
function fakeMinter(opts: { hold?: boolean } = {}) {
  const calls: string[] = [];
  const releases: Array<() => void> = [];
  let failNext = 0;
  const minter: LeafMinter = {
    async mintLeaf(hostname: string, options?: MintOptions): Promise<Leaf> {
      calls.push(hostname);
      const n = calls.length;
      const now = options?.now ?? 0;
      if (opts.hold) await new Promise<void>((r) => releases.push(r));
      if (failNext > 0) {
        failNext -= 1;
        throw new Error(`mint ${n} failed`);
      }
      return {
        hostname,
        certificateChainPem: `chain-${n}`,
        privateKeyPem: `key-${n}`,
        serial: `S${n}`,
        notBefore: now - 300_000,
        notAfter: now + LIFETIME,
        issuedAt: now,
      };
    },
  };
  return {
    minter,
    calls,
    /** Lets every mint in flight finish, after giving the cache's microtasks a chance to start one. */
    release: async () => {
      for (let i = 0; i < 100 && releases.length === 0; i++) await Promise.resolve();
      releases.splice(0).forEach((r) => r());
    },
    failNext: (n = 1) => (failNext = n),
  };
}

describe('LeafCache', () => {
  it('mints once for concurrent requests of one name and then serves the cached leaf', async () => {
    const m = fakeMinter({ hold: true });
    const cache = new LeafCache(m.minter, { clock: new ManualClock() });
    const waiting = Promise.all([
      cache.get('api.example.com'),
      cache.get('API.example.com.'),
      cache.get('api.example.com'),
    ]);
    await m.release();
    const leaves = await waiting;
    expect(m.calls).toEqual(['api.example.com']);
    expect(leaves.map((l) => l.serial)).toEqual(['S1', 'S1', 'S1']);
    expect((await cache.get('api.example.com')).serial).toBe('S1');
    expect(m.calls).toHaveLength(1);
    expect(cache.mintCount).toBe(1);
  });

  it('plans renewal when a third of the lifetime is left', () => {
    const leaf = { issuedAt: 1_000, notAfter: 1_000 + LIFETIME } as Leaf;
    expect(renewalTime(leaf)).toBe(1_000 + 16 * HOUR);
  });

  it('serves the current leaf while renewing it in the background, with one renewal at a time', async () => {
    const clock = new ManualClock();
    const m = fakeMinter();
    const cache = new LeafCache(m.minter, { clock });
    expect((await cache.get('r.example.com')).serial).toBe('S1');
    clock.advance(16 * HOUR - 1);
    expect((await cache.get('r.example.com')).serial).toBe('S1');
    expect(m.calls).toHaveLength(1);
    clock.advance(1);
    const during = await Promise.all([cache.get('r.example.com'), cache.get('r.example.com')]);
    expect(during.map((l) => l.serial)).toEqual(['S1', 'S1']);
    expect(m.calls).toHaveLength(2);
    expect((await cache.refresh('r.example.com')).serial).toBe('S2');
    expect((await cache.get('r.example.com')).serial).toBe('S2');
    expect(m.calls).toHaveLength(2);
  });

  it('waits for a new leaf once the cached one is (nearly) expired', async () => {
    const clock = new ManualClock();
    const m = fakeMinter();
    const cache = new LeafCache(m.minter, { clock });
    const first = await cache.get('x.example.com');
    clock.advance(first.notAfter - EXPIRY_MARGIN_MS - clock.now());
    expect((await cache.get('x.example.com')).serial).toBe('S2');
    clock.advance(2 * LIFETIME);
    expect((await cache.get('x.example.com')).serial).toBe('S3');
  });

  it('refresh returns the cached leaf until it is due, then waits for the renewal', async () => {
    const clock = new ManualClock();
    const m = fakeMinter();
    const cache = new LeafCache(m.minter, { clock });
    await cache.get('f.example.com');
    expect((await cache.refresh('f.example.com')).serial).toBe('S1');
    clock.advance(17 * HOUR);
    expect((await cache.refresh('f.example.com')).serial).toBe('S2');
    expect(cache.peek('f.example.com')?.serial).toBe('S2');
  });

  it('shares a failed mint among its waiters, caches nothing and tries again next time', async () => {
    const m = fakeMinter({ hold: true });
    const cache = new LeafCache(m.minter, { clock: new ManualClock() });
    m.failNext();
    const both = Promise.allSettled([cache.get('fail.example.com'), cache.get('fail.example.com')]);
    await m.release();
    expect((await both).map((r) => r.status)).toEqual(['rejected', 'rejected']);
    expect(m.calls).toHaveLength(1);
    expect(cache.peek('fail.example.com')).toBeUndefined();
    const again = cache.get('fail.example.com');
    await m.release();
    expect((await again).serial).toBe('S2');
  });

  it('keeps serving the current leaf when a background renewal fails, and backs off', async () => {
    const clock = new ManualClock();
    const m = fakeMinter();
    const logs = captureLogs('info');
    const cache = new LeafCache(m.minter, { clock, log: logs.log, retryAfterMs: 30_000 });
    await cache.get('b.example.com');
    clock.advance(17 * HOUR);
    m.failNext();
    expect((await cache.get('b.example.com')).serial).toBe('S1');
    await expect(cache.refresh('b.example.com')).rejects.toThrow('failed');
    expect(m.calls).toHaveLength(2);
    expect((await cache.get('b.example.com')).serial).toBe('S1');
    expect(m.calls).toHaveLength(2);
    clock.advance(30_000);
    expect((await cache.get('b.example.com')).serial).toBe('S1');
    expect(m.calls).toHaveLength(3);
    expect((await cache.refresh('b.example.com')).serial).toBe('S3');
    expect(
      logs
        .lines()
        .some(
          (l) => l.msg === 'sds: leaf renewal failed, still serving the current leaf' && l.hostname === 'b.example.com',
        ),
    ).toBe(true);
  });

  it('evicts the least recently used name beyond its bound', async () => {
    const m = fakeMinter();
    const cache = new LeafCache(m.minter, { clock: new ManualClock(), maxEntries: 2 });
    await cache.get('a.example.com');
    await cache.get('b.example.com');
    await cache.get('a.example.com');
    await cache.get('c.example.com');
    expect(cache.size).toBe(2);
    expect(cache.peek('b.example.com')).toBeUndefined();
    expect(cache.peek('a.example.com')?.serial).toBe('S1');
    await cache.get('b.example.com');
    expect(m.calls).toEqual(['a.example.com', 'b.example.com', 'c.example.com', 'b.example.com']);
  });

  it('refuses a name that is not a hostname without minting', async () => {
    const m = fakeMinter();
    const cache = new LeafCache(m.minter, { clock: new ManualClock() });
    await expect(cache.get('*.example.com')).rejects.toThrow('is not a DNS name or IP literal');
    expect(m.calls).toEqual([]);
  });

  it('logs a mint with hostname, serial and expiry, never the key', async () => {
    const logs = captureLogs('debug');
    const cache = new LeafCache(fakeMinter().minter, { clock: new ManualClock(), log: logs.log });
    await cache.get('log.example.com');
    const line = logs.lines().find((l) => l.msg === 'sds: minted leaf certificate');
    expect(line).toMatchObject({ hostname: 'log.example.com', serial: 'S1' });
    expect(typeof line?.notAfter).toBe('string');
    expect(logs.text()).not.toContain('key-1');
  });
});
