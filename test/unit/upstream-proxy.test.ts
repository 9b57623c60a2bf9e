import { describe, expect, it } from 'vitest';
import { NoProxyList } from '../../src/egress/no-proxy-list.js';
import { parseUpstreamProxy, UpstreamRoute } from '../../src/egress/upstream-proxy.js';
import { renderBootstrap } from '../../src/envoy/bootstrap.js';
import { toRouteResponse } from '../../src/extproc/translate.js';

describe('parseUpstreamProxy (--upstream-proxy)', () => {
  it.each([
    [
      'http://proxy.corp.example:3128',
      { scheme: 'http', host: 'proxy.corp.example', port: 3128, url: 'http://proxy.corp.example:3128' },
    ],
    [
      'https://Proxy.Corp.Example:443/',
      { scheme: 'https', host: 'proxy.corp.example', port: 443, url: 'https://proxy.corp.example:443' },
    ],
    ['http://10.0.0.5:80', { scheme: 'http', host: '10.0.0.5', port: 80, url: 'http://10.0.0.5:80' }],
    ['http://[fd00::5]:3128', { scheme: 'http', host: 'fd00::5', port: 3128, url: 'http://[fd00::5]:3128' }],
  ])('%s', (text, parsed) => expect(parseUpstreamProxy(text)).toEqual(parsed));

  it.each([
    ['socks5://proxy:1080', '--upstream-proxy: scheme "socks5" must be http or https'],
    [
      'http://user:s3cret@proxy:3128',
      '--upstream-proxy: must not contain credentials (user:password@); authproxy does not authenticate to the proxy',
    ],
    ['http://proxy.corp.example', '--upstream-proxy: must name a port, like http://proxy.corp.example:3128'],
    ['http://proxy:0', '--upstream-proxy: port must be 1..65535'],
    ['http://proxy:3128/path', '--upstream-proxy: must not have a path, query or fragment'],
    ['proxy:3128', '--upstream-proxy: scheme "proxy" must be http or https'],
    ['not a url', '--upstream-proxy: must be a URL like http://proxy.corp.example:3128'],
  ])('%s is refused in one line', (text, message) => {
    expect(() => parseUpstreamProxy(text)).toThrow(message);
  });

  it('never echoes a password', () => {
    expect(() => parseUpstreamProxy('http://u:hunter2@proxy:3128')).toThrow(
      expect.objectContaining({ message: expect.not.stringContaining('hunter2') }),
    );
  });
});

describe('NoProxyList (--upstream-no-proxy)', () => {
  const list = NoProxyList.parse(
    'corp.internal, .svc.example, db.example:5432, 10.0.0.0/8, 192.168.1.7, [fd00::1]:8443, LOCALHOST',
  );
  it.each([
    ['corp.internal', 443, undefined, true],
    ['api.corp.internal', 443, undefined, true],
    ['CORP.INTERNAL.', 80, undefined, true],
    ['notcorp.internal', 443, undefined, false],
    ['svc.example', 443, undefined, false],
    ['a.b.svc.example', 443, undefined, true],
    ['db.example', 5432, undefined, true],
    ['db.example', 443, undefined, false],
    ['10.1.2.3', 443, undefined, true],
    ['internal.example', 443, '10.9.9.9', true],
    ['public.example', 443, '8.8.8.8', false],
    ['192.168.1.7', 22, undefined, true],
    ['[fd00::1]', 8443, undefined, true],
    ['fd00::1', 443, undefined, false],
    ['localhost', 80, undefined, true],
  ])('%s:%s (checked %s) -> %s', (host, port, address, direct) =>
    expect(list.matches(host, port, address)).toBe(direct),
  );

  it('* matches everything; an empty list nothing', () => {
    expect(NoProxyList.parse('*').matches('anything.example', 1)).toBe(true);
    expect(NoProxyList.parse('').empty).toBe(true);
    expect(NoProxyList.parse(' , ').matches('a.example', 443)).toBe(false);
  });

  it.each([
    ['a b', '--upstream-no-proxy: "a b" is not a host, .domain, host:port, IP, CIDR or *'],
    ['10.0.0.0/33', '--upstream-no-proxy: "10.0.0.0/33" has a prefix length that is not 0..32'],
    ['example.com/path', '--upstream-no-proxy: "example.com/path" is not a host, .domain, host:port, IP, CIDR or *'],
    ['host:99999', '--upstream-no-proxy: "host:99999" has a port that is not 1..65535'],
    ['*.', '--upstream-no-proxy: "*." is not a host, .domain, host:port, IP, CIDR or *'],
    ['http://x', '--upstream-no-proxy: "http://x" is not a host, .domain, host:port, IP, CIDR or *'],
  ])('%s is refused in one line naming the flag', (entry, message) => {
    expect(() => NoProxyList.parse(entry)).toThrow(message);
  });
});

describe('UpstreamRoute', () => {
  const route = UpstreamRoute.fromFlags('http://proxy:3128', 'corp.internal')!;
  it('decides direct, proxy, or CONNECT for plain HTTP to an IP', () => {
    expect(route.via('git.corp.internal', 443, '10.1.1.1', 'CONNECT')).toBe('direct');
    expect(route.via('api.github.com', 443, '140.82.112.5', 'CONNECT')).toBe('proxy');
    expect(route.via('api.github.com', 80, '140.82.112.5', 'GET')).toBe('proxy');
    expect(route.via('140.82.112.5', 80, '140.82.112.5', 'GET')).toBe('proxy_connect');
    expect(route.via('[2606:4700::1]', 80, '2606:4700::1', 'POST')).toBe('proxy_connect');
  });
  it('is absent without flags; without a proxy, authproxy dials everything itself', () => {
    expect(UpstreamRoute.fromFlags(undefined, undefined)).toBeUndefined();
    expect(UpstreamRoute.fromFlags(undefined, 'x.example')!.direct('api.github.com', 443)).toBe(true);
    expect(route.direct('api.github.com', 443)).toBe(false);
    expect(route.direct('a.corp.internal', 443)).toBe(true);
  });
});

describe('the route answer and the bootstrap with a proxy', () => {
  it('carries the CONNECT target by name and the upstream answer as metadata', () => {
    const res = toRouteResponse('intercept', { host: 'api.github.com', port: 443 }, '140.82.112.5', 'proxy');
    const meta = res.response?.$case === 'requestHeaders' ? res.dynamicMetadata : undefined;
    expect(meta).toEqual({
      authproxy: {
        target_host: '140.82.112.5',
        target_port: '443',
        upstream_authority: 'api.github.com:443',
        upstream: 'proxy',
      },
    });
    const v6 = toRouteResponse('tunnel', { host: '2606:4700::1', port: 8443 }, '2606:4700::1');
    expect(v6.dynamicMetadata).toEqual({
      authproxy: { target_host: '[2606:4700::1]', target_port: '8443', upstream_authority: '[2606:4700::1]:8443' },
    });
  });

  it('renders the proxy clusters only when asked', () => {
    const base = {
      proxyAddress: '127.0.0.1',
      proxyPort: 10000,
      authproxy: 'unix:/run/a.sock',
      caBundle: '/ca.pem',
      sandboxId: 'sb',
      messageTimeoutMs: 12000,
    };
    expect(renderBootstrap(base)).not.toContain('upstream_proxy');
    const yaml = renderBootstrap({ ...base, upstreamProxy: parseUpstreamProxy('https://proxy.corp.example:3129') });
    for (const piece of [
      'name: upstream_proxy',
      'send_fully_qualified_url: true',
      'name: proxied_tls',
      'name: proxied_raw',
      'tunneling_config',
      'connect_tunnel_direct',
      'intercept_direct',
      'sni: proxy.corp.example',
    ]) {
      expect(yaml).toContain(piece);
    }
  });
});
