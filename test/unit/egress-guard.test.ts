import { describe, expect, it } from 'vitest';
import { classifyAddress, embeddedIpv4 } from '../../src/egress/address-class.js';
import { EgressGuard, parseEgressAllowList } from '../../src/egress/guard.js';
import { CachingResolver, type HostResolver } from '../../src/egress/resolver.js';

const table = (answers: Record<string, string[]>): HostResolver & { asked: string[] } => {
  const asked: string[] = [];
  return {
    asked,
    async resolve(host) {
      asked.push(host);
      const a = answers[host];
      if (!a) throw Object.assign(new Error('nx'), { code: 'ENOTFOUND' });
      return a;
    },
  };
};

describe('classifyAddress', () => {
  it.each([
    ['8.8.8.8', 'public'],
    ['203.0.113.7', 'public'],
    ['198.51.100.1', 'public'],
    ['2606:4700::1111', 'public'],
    ['127.0.0.1', 'loopback'],
    ['127.255.0.9', 'loopback'],
    ['::1', 'loopback'],
    ['[::1]', 'loopback'],
    ['0.0.0.0', 'unspecified'],
    ['::', 'unspecified'],
    ['10.1.2.3', 'private'],
    ['172.16.0.1', 'private'],
    ['172.31.255.255', 'private'],
    ['192.168.1.1', 'private'],
    ['fd12:3456::1', 'private'],
    ['fc00::1', 'private'],
    ['172.32.0.1', 'public'],
    ['172.15.255.255', 'public'],
    ['169.254.1.1', 'link_local'],
    ['fe80::1', 'link_local'],
    ['100.64.0.1', 'cgnat'],
    ['100.127.255.254', 'cgnat'],
    ['100.128.0.1', 'public'],
    ['169.254.169.254', 'metadata'],
    ['fd00:ec2::254', 'metadata'],
    ['169.254.170.2', 'metadata'],
    ['100.100.100.200', 'metadata'],
    ['224.0.0.1', 'multicast'],
    ['ff02::1', 'multicast'],
    ['255.255.255.255', 'reserved'],
    // IPv6 forms that reach an IPv4 host are judged by that host.
    ['::ffff:127.0.0.1', 'loopback'],
    ['::ffff:7f00:1', 'loopback'],
    ['::ffff:169.254.169.254', 'metadata'],
    ['::ffff:10.0.0.1', 'private'],
    ['64:ff9b::a00:1', 'private'],
    ['2002:7f00:1::', 'loopback'],
    ['::ffff:8.8.8.8', 'public'],
  ])('%s is %s', (address, cls) => {
    expect(classifyAddress(address)).toBe(cls);
  });

  it('is undefined for a non-address', () => {
    expect(classifyAddress('example.com')).toBeUndefined();
    expect(classifyAddress('127.0.0.1.nip.io')).toBeUndefined();
  });

  it('finds the IPv4 address inside IPv6 forms', () => {
    expect(embeddedIpv4('::ffff:1.2.3.4')).toBe('1.2.3.4');
    expect(embeddedIpv4('64:ff9b::102:304')).toBe('1.2.3.4');
    expect(embeddedIpv4('2002:102:304::1')).toBe('1.2.3.4');
    expect(embeddedIpv4('2606:4700::1111')).toBeUndefined();
    expect(embeddedIpv4('::1')).toBeUndefined();
  });
});

describe('parseEgressAllowList', () => {
  it('takes CIDRs and single addresses', () => {
    expect(parseEgressAllowList('10.0.0.0/8, 127.0.0.1,fd00::/8')).toEqual([
      { network: '10.0.0.0', prefix: 8, family: 'ipv4' },
      { network: '127.0.0.1', prefix: 32, family: 'ipv4' },
      { network: 'fd00::', prefix: 8, family: 'ipv6' },
    ]);
  });

  it.each(['10.0.0.0/33', 'example.com', '10.0.0.0/8/1', '::/129', '10.0.0.0/x'])('refuses %s naming it', (entry) => {
    expect(() => parseEgressAllowList(entry)).toThrow(
      `--egress-allow-cidrs: "${entry}" is not a CIDR (like 10.0.0.0/8 or fd00::/8) or an IP address`,
    );
  });
});

describe('EgressGuard', () => {
  const dns = table({
    'public.test': ['203.0.113.7'],
    'loop.test': ['127.0.0.1'],
    'mixed.test': ['203.0.113.7', '10.0.0.5'],
    'meta.test': ['169.254.169.254'],
    'v6.test': ['2606:4700::1111', '203.0.113.9'],
    'mapped.test': ['::ffff:127.0.0.1'],
  });

  it('passes a public destination and names the address to dial (IPv4 first)', async () => {
    const guard = new EgressGuard(dns);
    expect(await guard.check('public.test')).toEqual({ ok: true, address: '203.0.113.7' });
    expect(await guard.check('v6.test')).toEqual({ ok: true, address: '203.0.113.9' });
  });

  it('refuses hostnames that resolve to loopback, private (any answer) or metadata addresses', async () => {
    const guard = new EgressGuard(dns);
    expect(await guard.check('loop.test')).toEqual({
      ok: false,
      reason: 'private_destination',
      detail: 'resolves to a loopback address',
    });
    expect(await guard.check('mixed.test')).toEqual({
      ok: false,
      reason: 'private_destination',
      detail: 'resolves to a private address',
    });
    expect(await guard.check('meta.test')).toEqual({
      ok: false,
      reason: 'private_destination',
      detail: 'resolves to a metadata address',
    });
    expect(await guard.check('mapped.test')).toMatchObject({ ok: false, reason: 'private_destination' });
  });

  it('checks IP literals without DNS', async () => {
    const guard = new EgressGuard(dns);
    const before = dns.asked.length;
    expect(await guard.check('127.0.0.1')).toMatchObject({ ok: false, reason: 'private_destination' });
    expect(await guard.check('[::1]')).toMatchObject({ ok: false, reason: 'private_destination' });
    expect(await guard.check('203.0.113.1')).toEqual({ ok: true, address: '203.0.113.1' });
    expect(dns.asked.length).toBe(before);
  });

  it('fails closed on a name that does not resolve', async () => {
    expect(await new EgressGuard(dns).check('nx.test')).toEqual({
      ok: false,
      reason: 'unresolvable',
      detail: 'ENOTFOUND',
    });
  });

  it('opens named private ranges; loopback and metadata only when named explicitly', async () => {
    const broad = new EgressGuard(dns, parseEgressAllowList('0.0.0.0/0,::/0'));
    expect(broad.allows('10.0.0.5')).toBe(true);
    expect(broad.allows('169.254.1.1')).toBe(true);
    expect(broad.allows('127.0.0.1')).toBe(false);
    expect(broad.allows('169.254.169.254')).toBe(false);
    expect(broad.allows('::1')).toBe(false);
    const named = new EgressGuard(dns, parseEgressAllowList('127.0.0.0/8,169.254.169.254'));
    expect(named.allows('127.0.0.1')).toBe(true);
    expect(named.allows('169.254.169.254')).toBe(true);
    expect(named.allows('10.0.0.5')).toBe(false);
    expect(await named.check('loop.test')).toEqual({ ok: true, address: '127.0.0.1' });
    const linkLocal = new EgressGuard(dns, parseEgressAllowList('169.254.0.0/16'));
    expect(linkLocal.allows('169.254.1.1')).toBe(true);
    expect(linkLocal.allows('169.254.169.254')).toBe(false);
  });
});

describe('CachingResolver', () => {
  it('asks once within its lifetime, again after it, and never keeps a failure', async () => {
    let now = 0;
    const inner = table({ 'a.test': ['203.0.113.1'] });
    const cached = new CachingResolver(inner, 5000, 100, () => now);
    await cached.resolve('a.test');
    await cached.resolve('a.test');
    expect(inner.asked).toEqual(['a.test']);
    now = 6000;
    await cached.resolve('a.test');
    expect(inner.asked).toEqual(['a.test', 'a.test']);
    await expect(cached.resolve('nx.test')).rejects.toThrow();
    await expect(cached.resolve('nx.test')).rejects.toThrow();
    expect(inner.asked.filter((h) => h === 'nx.test')).toHaveLength(2);
  });
});
