import { describe, expect, it } from 'vitest';
import { buildSnapshot, snapshotHeaders, SNAPSHOT_BODY_LIMIT } from '../../src/callbacks/snapshot.js';

const src = (over: Partial<Parameters<typeof buildSnapshot>[0]> = {}) => ({
  method: 'POST',
  scheme: 'https',
  path: '/v1/x?b=2&a=1',
  headers: { 'content-type': ['application/json'] },
  body: Buffer.from('{"a":1}'),
  complete: true,
  ...over,
});

describe('buildSnapshot', () => {
  it("builds LangSmith's SandboxCallbackRequest from the request and its decided target", () => {
    expect(buildSnapshot(src(), { host: 'api.example.com', port: 443 })).toEqual({
      method: 'POST',
      url: 'https://api.example.com/v1/x?b=2&a=1',
      scheme: 'https',
      host: 'api.example.com',
      path: '/v1/x',
      query: 'b=2&a=1',
      headers: { 'content-type': ['application/json'] },
      body_base64: Buffer.from('{"a":1}').toString('base64'),
      body_truncated: false,
    });
  });

  it('names a non-default port, leaves out an empty query and a fragment, brackets IPv6', () => {
    const s = buildSnapshot(src({ path: '/p?#frag' }), { host: 'api.example.com', port: 8443 });
    expect(s.url).toBe('https://api.example.com:8443/p');
    expect(s).not.toHaveProperty('query');
    expect(buildSnapshot(src({ path: '/' }), { host: '::1', port: 443 }).url).toBe('https://[::1]/');
    expect(buildSnapshot(src({ path: '' }), { host: 'a.test', port: 443 }).path).toBe('/');
  });

  it('caps the body at 1 MiB and says when more followed', () => {
    const big = Buffer.alloc(SNAPSHOT_BODY_LIMIT + 10, 7);
    const s = buildSnapshot(src({ body: big }), { host: 'a.test', port: 443 });
    expect(Buffer.from(s.body_base64, 'base64').length).toBe(SNAPSHOT_BODY_LIMIT);
    expect(s.body_truncated).toBe(true);
    expect(
      buildSnapshot(src({ body: Buffer.from('part'), complete: false }), { host: 'a.test', port: 443 }).body_truncated,
    ).toBe(true);
    expect(buildSnapshot(src({ body: new Uint8Array(0) }), { host: 'a.test', port: 443 })).toMatchObject({
      body_base64: '',
      body_truncated: false,
    });
  });
});

describe('snapshotHeaders', () => {
  const h = (key: string, v: string | Buffer) => ({
    key,
    value: '',
    rawValue: Buffer.isBuffer(v) ? v : Buffer.from(v),
  });
  it('groups repeated names in order and leaves out pseudo-headers, Proxy-Authorization and x-authproxy-*', () => {
    expect(
      snapshotHeaders([
        h(':method', 'GET'),
        h(':path', '/'),
        h('x-a', '1'),
        h('Proxy-Authorization', 'Basic x'),
        h('x-a', '2'),
        h('x-authproxy-route', 'i'),
        h('accept', '*/*'),
      ]),
    ).toEqual({
      'x-a': ['1', '2'],
      accept: ['*/*'],
    });
  });

  it('decodes UTF-8 values, and bytes that are not UTF-8 one character per byte', () => {
    expect(snapshotHeaders([h('x-u', 'héllo'), h('x-l', Buffer.from([0x68, 0xe9]))])).toEqual({
      'x-u': ['héllo'],
      'x-l': ['hé'],
    });
  });

  it('takes `value` when Envoy sent no raw_value', () => {
    expect(snapshotHeaders([{ key: 'x-v', value: 'plain', rawValue: Buffer.alloc(0) }])).toEqual({ 'x-v': ['plain'] });
  });
});
