import { X509Certificate } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually } from '../helpers/fs.js';
import { expectValidLeaf, pemBodyLines } from '../helpers/sds-certs.js';
import { decodeSecret, openDelta, SECRET_TYPE_URL, type WireDeltaResponse } from '../helpers/sds-client.js';
import { startSds, type SdsFixture } from '../helpers/sds-server.js';

const HOUR = 3_600_000;
const subscribe = (...names: string[]) => ({ type_url: SECRET_TYPE_URL, resource_names_subscribe: names });
const names = (r: WireDeltaResponse) => (r.resources ?? []).map((x) => x.name);

describe('SDS DeltaSecrets over real gRPC', () => {
  let f: SdsFixture;
  /** Every private key received, to search the logs for at the end. */
  const keys: string[] = [];
  const secretOf = (r: WireDeltaResponse, i = 0) => {
    const s = decodeSecret(r.resources![i]!.resource);
    keys.push(s.keyPem);
    return s;
  };

  beforeAll(async () => {
    f = await startSds();
  });
  afterAll(async () => {
    await f?.close();
  });

  it('answers an allowed name with a leaf that verifies against the CA and carries its key', async () => {
    const stream = openDelta(f.client);
    const r = await stream.send(subscribe('api.example.com')).next();
    expect(r.type_url).toBe(SECRET_TYPE_URL);
    expect(r.nonce).not.toBe('');
    expect(r.removed_resources ?? []).toEqual([]);
    expect(names(r)).toEqual(['api.example.com']);
    const secret = secretOf(r);
    expect(secret.name).toBe('api.example.com');
    const cert = expectValidLeaf(secret.chainPem, secret.keyPem, f.caPem, 'api.example.com', f.clock.now());
    expect(r.resources![0]!.version).toBe(cert.serialNumber);
    expect(f.policyCalls).toContainEqual(['sb-default', 'api.example.com']);
    stream.end();
    expect((await stream.status).code).toBe(grpc.status.OK);
  });

  it('answers refused and invalid names in removed_resources and mints nothing for them', async () => {
    const before = f.policyCalls.length;
    const stream = openDelta(f.client);
    const bad = ['evil.test', '*.example.com', 'bad name.example.com', 'x.example.com:443', '', 'no-sni.invalid'];
    const r = await stream.send(subscribe('ok.example.com', ...bad)).next();
    expect(names(r)).toEqual(['ok.example.com']);
    expect([...(r.removed_resources ?? [])].sort()).toEqual([...bad].sort());
    expect(f.minted).not.toEqual(expect.arrayContaining(['evil.test']));
    expect(f.minted.filter((h) => !h.endsWith('.example.com'))).toEqual([]);
    // Only well-formed names reach the policy.
    expect(
      f.policyCalls
        .slice(before)
        .map(([, h]) => h)
        .sort(),
    ).toEqual(['evil.test', 'no-sni.invalid', 'ok.example.com']);
    secretOf(r);
    stream.cancel();
  });

  it('keeps the requested spelling as the resource name and mints for the canonical host', async () => {
    const stream = openDelta(f.client);
    const r = await stream.send(subscribe('Mixed.Example.COM')).next();
    expect(names(r)).toEqual(['Mixed.Example.COM']);
    expectValidLeaf(secretOf(r).chainPem, secretOf(r).keyPem, f.caPem, 'mixed.example.com', f.clock.now());
    expect(f.minted).toContain('mixed.example.com');
    stream.cancel();
  });

  it('mints once when two streams ask for the same new name at the same time', async () => {
    const a = openDelta(f.client);
    const b = openDelta(f.client, { 'x-sandbox-id': 'sb-9' });
    a.send(subscribe('concurrent.example.com'));
    b.send(subscribe('concurrent.example.com'));
    const [ra, rb] = await Promise.all([a.next(), b.next()]);
    expect(ra.resources![0]!.version).toBe(rb.resources![0]!.version);
    expect(f.minted.filter((h) => h === 'concurrent.example.com')).toHaveLength(1);
    secretOf(ra);
    a.cancel();
    b.cancel();
  });

  it('passes the x-sandbox-id metadata to the mint policy', async () => {
    const stream = openDelta(f.client, { 'x-sandbox-id': 'sb-2' });
    const r = await stream.send(subscribe('only-sb2.example.com', 'api.example.com')).next();
    expect(names(r)).toEqual(['only-sb2.example.com']);
    expect(r.removed_resources).toEqual(['api.example.com']);
    expect(f.policyCalls).toContainEqual(['sb-2', 'only-sb2.example.com']);
    expect(f.policyCalls).toContainEqual(['sb-2', 'api.example.com']);
    secretOf(r);
    stream.cancel();
  });

  it.each([
    ['repeated', { 'x-sandbox-id': ['sb-a', 'sb-b'] }],
    ['malformed', { 'x-sandbox-id': 'sb a!' }],
    ['comma-joined', { 'x-sandbox-id': 'sb-a,sb-b' }],
    ['empty', { 'x-sandbox-id': '' }],
  ])('refuses every name when the sandbox metadata is %s, without asking the policy', async (_what, metadata) => {
    const before = f.policyCalls.length;
    const mintedBefore = f.minted.length;
    const stream = openDelta(f.client, metadata);
    const r = await stream.send(subscribe('api.example.com', 'fresh-for-ambiguous.example.com')).next();
    expect(r.resources ?? []).toEqual([]);
    expect(r.removed_resources).toEqual(['api.example.com', 'fresh-for-ambiguous.example.com']);
    expect(f.policyCalls.length).toBe(before);
    expect(f.minted.length).toBe(mintedBefore);
    stream.cancel();
  });

  it('pushes a renewed leaf on the open stream before the old one expires', async () => {
    const stream = openDelta(f.client);
    const first = await stream.send(subscribe('renew.example.com')).next();
    stream.send({ type_url: SECRET_TYPE_URL, response_nonce: first.nonce });
    const old = new X509Certificate(secretOf(first).chainPem);
    f.clock.advance(17 * HOUR);
    const pushed = await stream.next();
    expect(names(pushed)).toEqual(['renew.example.com']);
    expect(pushed.nonce).not.toBe(first.nonce);
    const renewed = expectValidLeaf(
      secretOf(pushed).chainPem,
      secretOf(pushed).keyPem,
      f.caPem,
      'renew.example.com',
      f.clock.now(),
    );
    expect(pushed.resources![0]!.version).not.toBe(first.resources![0]!.version);
    expect(Date.parse(renewed.validTo)).toBeGreaterThan(Date.parse(old.validTo));
    expect(f.clock.now()).toBeLessThan(Date.parse(old.validTo));
    expect(f.minted.filter((h) => h === 'renew.example.com')).toHaveLength(2);
    stream.cancel();
  });

  it('stops renewing a name once it is unsubscribed', async () => {
    const stream = openDelta(f.client);
    await stream.send(subscribe('gone.example.com')).next();
    stream.send({ type_url: SECRET_TYPE_URL, resource_names_unsubscribe: ['gone.example.com'] });
    // Requests are handled in order: once this answer is in, the unsubscribe has been applied.
    const marker = await stream.send(subscribe('marker.example.com')).next();
    expect(names(marker)).toEqual(['marker.example.com']);
    f.clock.advance(17 * HOUR);
    // gone's renewal would have been due first; the first push after the jump is marker's alone.
    const pushed = await stream.next();
    expect(names(pushed)).toEqual(['marker.example.com']);
    expect(f.minted.filter((h) => h === 'gone.example.com')).toHaveLength(1);
    stream.cancel();
  });

  it('answers a re-subscribe again', async () => {
    const stream = openDelta(f.client);
    const first = await stream.send(subscribe('again.example.com')).next();
    const second = await stream.send(subscribe('again.example.com')).next();
    expect(names(second)).toEqual(['again.example.com']);
    expect(second.resources![0]!.version).toBe(first.resources![0]!.version);
    stream.cancel();
  });

  it('pushes a name as removed at renewal once the policy no longer allows it', async () => {
    const stream = openDelta(f.client);
    await stream.send(subscribe('revoke.example.com')).next();
    f.revoked.add('revoke.example.com');
    f.clock.advance(17 * HOUR);
    const pushed = await stream.next();
    expect(pushed.resources ?? []).toEqual([]);
    expect(pushed.removed_resources).toEqual(['revoke.example.com']);
    stream.cancel();
  });

  it('logs a NACK once and does not resend', async () => {
    const stream = openDelta(f.client);
    const r = await stream.send(subscribe('nack.example.com')).next();
    stream.send({
      type_url: SECRET_TYPE_URL,
      response_nonce: r.nonce,
      error_detail: {
        code: 3,
        message: 'Failed to load certificate -----BEGIN PRIVATE KEY-----\nMIGH\n-----END PRIVATE KEY----- rejected',
      },
    });
    const next = await stream.send(subscribe('after-nack.example.com')).next();
    expect(names(next)).toEqual(['after-nack.example.com']);
    const warnings = f.logs.lines().filter((l) => l.msg === 'sds: Envoy rejected a secret (NACK); not resending');
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatchObject({ level: 40, nonce: r.nonce, code: 3 });
    expect(String(warnings[0]!.detail)).not.toContain('MIGH');
    expect(f.minted.filter((h) => h === 'nack.example.com')).toHaveLength(1);
    stream.cancel();
  });

  it('ends a stream that asks for another resource type with INVALID_ARGUMENT', async () => {
    const stream = openDelta(f.client);
    stream.send({
      type_url: 'type.googleapis.com/envoy.config.cluster.v3.Cluster',
      resource_names_subscribe: ['api.example.com'],
    });
    const status = await stream.status;
    expect(status.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(status.details).toContain('type_url');
  });

  it('forgets a stream and its renewal timers when the client goes away', async () => {
    await eventually(() => f.sds.openStreams === 0, 5000, 'earlier streams to close');
    const stream = openDelta(f.client);
    await stream.send(subscribe('leaving.example.com')).next();
    expect(f.sds.openStreams).toBe(1);
    expect(f.clock.pending).toBe(1);
    stream.cancel();
    await eventually(() => f.sds.openStreams === 0 && f.clock.pending === 0, 5000, 'the stream to be forgotten');
  });

  it('never logs a private key', () => {
    expect(keys.length).toBeGreaterThan(5);
    const text = f.logs.text();
    expect(text).not.toContain('PRIVATE KEY');
    for (const key of keys) for (const line of pemBodyLines(key)) expect(text).not.toContain(line);
    expect(text).toContain('sds: minted leaf certificate');
  });
});
