import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually } from '../helpers/fs.js';
import { expectValidLeaf } from '../helpers/sds-certs.js';
import {
  decodeSecret,
  fetchSecrets,
  openDelta,
  openSotw,
  SECRET_TYPE_URL,
  type WireSotwResponse,
} from '../helpers/sds-client.js';
import { startSds, type SdsFixture } from '../helpers/sds-server.js';

const HOUR = 3_600_000;
const request = (names: string[], nonce = '') => ({
  type_url: SECRET_TYPE_URL,
  resource_names: names,
  response_nonce: nonce,
});
const secrets = (r: WireSotwResponse) => (r.resources ?? []).map(decodeSecret);

describe('SDS StreamSecrets (state of the world) over real gRPC', () => {
  let f: SdsFixture;
  beforeAll(async () => {
    f = await startSds();
  });
  afterAll(async () => {
    await f?.close();
  });

  it('returns a verified leaf for each requested allowed name and leaves refused ones out', async () => {
    const stream = openSotw(f.client, { 'x-sandbox-id': 'sb-1' });
    const r = await stream.send(request(['a.example.com', 'b.example.com', 'evil.test'])).next();
    expect(r.type_url).toBe(SECRET_TYPE_URL);
    expect(r.version_info).not.toBe('');
    expect(r.nonce).not.toBe('');
    const got = secrets(r);
    expect(got.map((s) => s.name).sort()).toEqual(['a.example.com', 'b.example.com']);
    for (const s of got) expectValidLeaf(s.chainPem, s.keyPem, f.caPem, s.name, f.clock.now());
    expect(f.policyCalls).toContainEqual(['sb-1', 'evil.test']);
    expect(f.minted).not.toContain('evil.test');
    stream.cancel();
  });

  it('does not answer an ACK, and answers a changed name set', async () => {
    const stream = openSotw(f.client);
    const first = await stream.send(request(['ack.example.com'])).next();
    stream.send(request(['ack.example.com'], first.nonce));
    const second = await stream.send(request(['ack.example.com', 'ack2.example.com'], first.nonce)).next();
    expect(second.version_info).not.toBe(first.version_info);
    expect(
      secrets(second)
        .map((s) => s.name)
        .sort(),
    ).toEqual(['ack.example.com', 'ack2.example.com']);
    stream.cancel();
  });

  it('does not answer a NACK', async () => {
    const stream = openSotw(f.client);
    const first = await stream.send(request(['nack.example.com'])).next();
    stream.send({ ...request(['nack.example.com'], first.nonce), error_detail: { code: 3, message: 'rejected' } });
    const next = await stream.send(request(['other.example.com'], first.nonce)).next();
    expect(secrets(next).map((s) => s.name)).toEqual(['other.example.com']);
    expect(
      f.logs
        .lines()
        .some((l) => l.msg === 'sds: Envoy rejected a secret (NACK); not resending' && l.detail === 'rejected'),
    ).toBe(true);
    stream.cancel();
  });

  it('pushes renewed leaves on the open stream', async () => {
    const stream = openSotw(f.client);
    const first = await stream.send(request(['sotw-renew.example.com'])).next();
    stream.send(request(['sotw-renew.example.com'], first.nonce));
    const before = first.resources![0]!;
    f.clock.advance(17 * HOUR);
    const pushed = await stream.next();
    const [renewed] = secrets(pushed);
    expect(renewed!.name).toBe('sotw-renew.example.com');
    expect(renewed!.chainPem).not.toBe(decodeSecret(before).chainPem);
    expectValidLeaf(renewed!.chainPem, renewed!.keyPem, f.caPem, 'sotw-renew.example.com', f.clock.now());
    stream.cancel();
  });

  it('answers FetchSecrets with UNIMPLEMENTED and mints nothing', async () => {
    const before = f.minted.length;
    const { code } = await fetchSecrets(f.client, ['fetch.example.com']);
    expect(code).toBe(grpc.status.UNIMPLEMENTED);
    expect(f.minted.length).toBe(before);
  });

  it('close() ends every open stream with OK and cancels their renewal timers', async () => {
    await eventually(() => f.sds.openStreams === 0, 5000, 'earlier streams to close');
    const sotw = openSotw(f.client);
    const delta = openDelta(f.client);
    await sotw.send(request(['close-a.example.com'])).next();
    await delta.send({ type_url: SECRET_TYPE_URL, resource_names_subscribe: ['close-b.example.com'] }).next();
    expect(f.sds.openStreams).toBe(2);
    expect(f.clock.pending).toBe(2);
    f.sds.close();
    expect((await sotw.status).code).toBe(grpc.status.OK);
    expect((await delta.status).code).toBe(grpc.status.OK);
    expect(f.sds.openStreams).toBe(0);
    expect(f.clock.pending).toBe(0);
  });
});
