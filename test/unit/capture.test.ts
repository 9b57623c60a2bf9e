import { describe, expect, it } from 'vitest';
import { decideCaptured, type OriginalDestination } from '../../src/policy/capture.js';
import { captureDecision } from '../../src/engine/capture-route.js';
import { capturedFrom } from '../../src/extproc/capture.js';
import { Engine } from '../../src/engine/engine.js';
import { EgressGuard } from '../../src/egress/guard.js';
import type { HostResolver } from '../../src/egress/resolver.js';
import type { CallbackResolver } from '../../src/callbacks/resolver.js';
import { captureLogs } from '../helpers/logs.js';
import { policyFrom } from './support.js';

const policy = policyFrom(`
rules:
  - name: gh
    match_hosts: ["api.github.com"]
    headers: [{ name: Authorization, type: plaintext, value: "Bearer t" }]
no_proxy: ["internal.example.com"]
access_control:
  allow_list: ["api.github.com", "*.example.org", "plain.example.com", "db.example.com:5432", "other.example.com:5432", "ssh.example.com", "198.51.100.9:5432", "203.0.113.0/24"]
`);
const open = policyFrom('rules: []');

const at = (
  kind: OriginalDestination['kind'],
  address = '203.0.113.10',
  port = kind === 'http' ? 80 : 443,
): OriginalDestination => ({ address, port, kind });

describe('decideCaptured: transparent-mode rules in front of the forward proxy decision', () => {
  it.each<[string, string, string, OriginalDestination, string, string?]>([
    ['TLS to a credentialed SNI is intercepted', 'CONNECT', 'api.github.com:443', at('tls'), 'intercept'],
    ['TLS to another allowed SNI is tunnelled', 'CONNECT', 'a.example.org:443', at('tls'), 'tunnel'],
    [
      'TLS to an SNI the allow_list lacks is refused',
      'CONNECT',
      'evil.example.net:443',
      at('tls'),
      'refuse',
      'access_denied',
    ],
    ['TLS without SNI (Envoy writes "-") is dropped', 'CONNECT', '-:443', at('tls'), 'refuse', 'no_sni'],
    ['TLS with an IP as SNI is dropped', 'CONNECT', '203.0.113.10:443', at('tls'), 'refuse', 'no_sni'],
    [
      'TLS whose authority port is not the original port is refused',
      'CONNECT',
      'api.github.com:8443',
      at('tls'),
      'refuse',
      'invalid_authority',
    ],
    [
      'plain HTTP to a credentialed host is 403 (cleartext)',
      'GET',
      'api.github.com',
      at('http'),
      'refuse',
      'cleartext',
    ],
    ['plain HTTP to another host is forwarded', 'GET', 'plain.example.com', at('http'), 'tunnel'],
    [
      'plain HTTP to an IP literal on port 80 is judged as the address dialled',
      'GET',
      '203.0.113.10',
      at('http'),
      'tunnel',
    ],
    [
      'plain HTTP to an IP literal on another port is dropped',
      'GET',
      '203.0.113.10:8080',
      at('http', '203.0.113.10', 8080),
      'refuse',
      'ip_literal',
    ],
    [
      'a CONNECT inside captured plain HTTP is refused',
      'CONNECT',
      'api.github.com:443',
      at('http'),
      'refuse',
      'invalid_authority',
    ],
    [
      'raw TCP on 443 is dropped: 80 and 443 carry only HTTP and TLS',
      'CONNECT',
      '203.0.113.10:443',
      at('tcp'),
      'refuse',
      'protocol_mismatch',
    ],
    [
      'raw TCP on a port no host:PORT entry names is dropped',
      'CONNECT',
      '198.51.100.9:22',
      at('tcp', '198.51.100.9', 22),
      'refuse',
      'raw_tcp_denied',
    ],
    [
      'raw TCP on a listed port waits for attribution',
      'CONNECT',
      '198.51.100.7:5432',
      at('tcp', '198.51.100.7', 5432),
      'attribute',
    ],
  ])('%s', (_what, method, authority, original, outcome, reason) => {
    const d = decideCaptured(policy, method, authority, original);
    expect(d.outcome).toBe(outcome);
    if (reason) expect(d).toMatchObject({ reason });
  });

  it("decides plain HTTP on the original port, not the Host header's", () => {
    expect(decideCaptured(policy, 'GET', 'plain.example.com:9999', at('http', '203.0.113.10', 80))).toMatchObject({
      outcome: 'tunnel',
      target: { host: 'plain.example.com', port: 80 },
    });
  });

  it('opens raw TCP only with an allow_list, and only for names listed with that exact port', () => {
    expect(decideCaptured(open, 'CONNECT', '198.51.100.7:5432', at('tcp', '198.51.100.7', 5432))).toMatchObject({
      outcome: 'refuse',
      reason: 'raw_tcp_denied',
    });
    expect(decideCaptured(policy, 'CONNECT', '198.51.100.7:5432', at('tcp', '198.51.100.7', 5432))).toMatchObject({
      hosts: ['db.example.com', 'other.example.com'],
    });
  });
});

describe('captureDecision: raw TCP attributed by resolving the listed names', () => {
  const resolver = (answers: Record<string, string[]>): HostResolver & { asked: string[] } => {
    const asked: string[] = [];
    return {
      asked,
      resolve: async (h) => {
        asked.push(h);
        return answers[h] ?? Promise.reject(new Error('nx'));
      },
    };
  };

  it('tunnels (never intercepts) to the first listed name whose answer holds the address', async () => {
    const r = resolver({ 'db.example.com': ['198.51.100.1'], 'other.example.com': ['198.51.100.2', '198.51.100.7'] });
    await expect(
      captureDecision(policy, 'CONNECT', '198.51.100.7:5432', at('tcp', '198.51.100.7', 5432), r),
    ).resolves.toMatchObject({ outcome: 'tunnel', target: { host: 'other.example.com', port: 5432 } });
  });

  it('refuses an address no listed name resolves to, even one that an IP:port entry names', async () => {
    const r = resolver({ 'db.example.com': ['198.51.100.1'] });
    await expect(
      captureDecision(policy, 'CONNECT', '198.51.100.9:5432', at('tcp', '198.51.100.9', 5432), r),
    ).resolves.toMatchObject({ outcome: 'refuse', reason: 'raw_tcp_denied' });
    expect(
      captureDecision(policy, 'CONNECT', '198.51.100.9:5432', at('tcp', '198.51.100.9', 5432), undefined),
    ).toMatchObject({ outcome: 'refuse' });
  });

  it('compares IPv6 answers as addresses', async () => {
    const r = resolver({ 'db.example.com': ['2001:db8:0:0::7'] });
    await expect(
      captureDecision(policy, 'CONNECT', '[2001:db8::7]:5432', at('tcp', '2001:db8::7', 5432), r),
    ).resolves.toMatchObject({ outcome: 'tunnel' });
  });
});

describe('Engine.route with an original destination', () => {
  const noDns: HostResolver = { resolve: async (h) => Promise.reject(new Error(`unexpected lookup of ${h}`)) };
  const engine = (resolver: HostResolver = noDns) =>
    new Engine({ policyFor: () => policy }, {} as CallbackResolver, captureLogs().log, {
      egress: new EgressGuard(resolver),
    });

  it('checks and pins the original address, with no DNS lookup, keeping SNI as the target', async () => {
    await expect(engine().route('CONNECT', 'api.github.com:443', 'sb', at('tls'))).resolves.toEqual({
      kind: 'route',
      route: 'intercept',
      target: { host: 'api.github.com', port: 443 },
      address: '203.0.113.10',
    });
  });

  it('refuses a private original destination whatever the name, 403', async () => {
    await expect(engine().route('CONNECT', 'api.github.com:443', 'sb', at('tls', '10.0.0.5'))).resolves.toMatchObject({
      kind: 'immediate',
      status: 403,
      body: 'destination resolves to a private address',
    });
    await expect(
      engine().route('CONNECT', '127.0.0.1:5432', 'sb', at('tcp', '127.0.0.1', 5432)),
    ).resolves.toMatchObject({ kind: 'immediate', status: 403 });
  });

  it('without an original destination still resolves the CONNECT target (forward mode unchanged)', async () => {
    const asked: string[] = [];
    const r: HostResolver = {
      resolve: async (h) => {
        asked.push(h);
        return ['203.0.113.77'];
      },
    };
    await expect(engine(r).route('CONNECT', 'api.github.com:443', 'sb')).resolves.toMatchObject({
      route: 'intercept',
      address: '203.0.113.77',
    });
    expect(asked).toEqual(['api.github.com']);
  });
});

describe('capturedFrom: the capture headers Envoy sets', () => {
  const headers = (pairs: Array<[string, string]>) =>
    ({
      headers: { headers: pairs.map(([key, v]) => ({ key, value: '', rawValue: Buffer.from(v) })) },
      attributes: {},
      endOfStream: true,
    }) as never;

  it.each<[Array<[string, string]>, OriginalDestination | undefined]>([
    [
      [
        ['x-authproxy-original-dst', '203.0.113.10:443'],
        ['x-authproxy-capture', 'tls'],
      ],
      { address: '203.0.113.10', port: 443, kind: 'tls' },
    ],
    [
      [
        ['x-authproxy-original-dst', '[2001:db8::1]:5432'],
        ['x-authproxy-capture', 'tcp'],
      ],
      { address: '2001:db8::1', port: 5432, kind: 'tcp' },
    ],
    [[['x-authproxy-original-dst', '203.0.113.10:443']], undefined],
    [
      [
        ['x-authproxy-original-dst', '203.0.113.10:443'],
        ['x-authproxy-capture', 'udp'],
      ],
      undefined,
    ],
    [
      [
        ['x-authproxy-original-dst', 'example.com:443'],
        ['x-authproxy-capture', 'tls'],
      ],
      undefined,
    ],
    [
      [
        ['x-authproxy-original-dst', '203.0.113.10:0'],
        ['x-authproxy-capture', 'tls'],
      ],
      undefined,
    ],
    [
      [
        ['x-authproxy-original-dst', '203.0.113.10:443'],
        ['x-authproxy-original-dst', '10.0.0.1:443'],
        ['x-authproxy-capture', 'tls'],
      ],
      undefined,
    ],
  ])('%j -> %j', (pairs, expected) => {
    expect(capturedFrom(headers(pairs))).toEqual(expected);
  });
});
