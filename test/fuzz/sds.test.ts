/**
 * A fuzzer for SDS (the real `startService` with an interception CA, on a Unix socket): random
 * DeltaDiscoveryRequest and DiscoveryRequest streams (resource names of every shape and size, duplicates,
 * unsubscribes, foreign type_urls, nonces, NACKs, random metadata), garbage frames on the raw HTTP/2
 * stream, and streams that never send anything. Every stream is answered or closed (never with an internal
 * error), a certificate is only ever minted for a host the policy intercepts, a normal subscription keeps
 * working beside each case and after all of them, and the heap after GC stays within a bound.
 */
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startService, type Service } from '../../src/serve/service.js';
import { generateCa } from '../../src/sds/ca.js';
import { tempDir, type TempDir } from '../helpers/fs.js';
import {
  fuzz,
  fuzzTimeout,
  heapAfterGc,
  hostileString,
  report,
  runs,
  scanningLogger,
  wellFormed,
} from '../helpers/fuzz.js';
import { grpcFrame, rawSession, rawStream } from '../helpers/grpc-raw.js';
import {
  decodeSecret,
  openDelta,
  SECRET_TYPE_URL,
  sdsClient,
  type WireDeltaResponse,
  type WireSotwResponse,
} from '../helpers/sds-client.js';

const HEAP_BOUND = 64 * 1024 * 1024;
/** Names the policy intercepts (a rule names them), in canonical form. */
const ALLOWED = new Set(['api.github.com', 'a.example.com', 'b.example.com', 'deep.a.example.com']);

let dir: TempDir;
let service: Service;
let client: grpc.Client;
const logs = scanningLogger(['PRIVATE KEY']);

type Call = grpc.ClientDuplexStream<object, unknown>;
const method = (name: 'DeltaSecrets' | 'StreamSecrets', md: grpc.Metadata): Call =>
  (client as unknown as Record<string, (md: grpc.Metadata) => Call>)[name]!.call(client, md);

/** Sends `requests` on a new stream, half-closes, and collects every response until the status. */
function run<Res>(
  name: 'DeltaSecrets' | 'StreamSecrets',
  requests: object[],
  metadata: Record<string, string | string[]> = {},
): Promise<{ responses: Res[]; status: grpc.StatusObject }> {
  const md = new grpc.Metadata();
  for (const [k, v] of Object.entries(metadata)) for (const one of [v].flat()) md.add(k, one);
  const call = method(name, md);
  const responses: Res[] = [];
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no SDS status within 15 s')), 15_000);
    call.on('data', (r: Res) => responses.push(r));
    call.on('error', () => {});
    call.on('status', (status: grpc.StatusObject) => {
      clearTimeout(timer);
      resolve({ responses, status });
    });
    for (const r of requests) call.write(r);
    call.end();
  });
}

/** What the policy would certify for a requested name (lower-case, one trailing dot dropped), or undefined. */
const canonicalAllowed = (name: string) => {
  const host = /^[\x21-\x7e]+$/.test(name) ? name.toLowerCase().replace(/\.$/, '') : '';
  return ALLOWED.has(host) ? host : undefined;
};

/** A normal subscription that must get its certificate, whatever else is going on. */
async function expectLeaf(): Promise<void> {
  const stream = openDelta(client);
  const r = await stream.send({ type_url: SECRET_TYPE_URL, resource_names_subscribe: ['api.github.com'] }).next();
  expect((r.resources ?? []).map((x) => x.name)).toEqual(['api.github.com']);
  expect(decodeSecret(r.resources![0]!.resource).chainPem).toContain('BEGIN CERTIFICATE');
  // Half-closed, not cancelled: a client resetting streams faster than ~33/s (after a burst of 1,000) trips
  // Node's HTTP/2 rapid-reset guard, which then sends GOAWAY on the whole connection.
  stream.end();
  expect((await stream.status).code).toBe(grpc.status.OK);
}

const name = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.constantFrom(
      ...ALLOWED,
      'API.GITHUB.COM',
      'api.github.com.',
      'A.Example.Com',
      'c.example.com',
      'example.com',
      'evil.test',
      'api.github.com:443',
      '*.example.com',
      'a..example.com',
      '-a.example.com',
      '\u212a.example.com',
      'a.example.com\u0000',
      '127.0.0.1',
      '::1',
      '169.254.169.254',
      'no-sni.invalid',
      '',
      ' ',
      `${'a'.repeat(63)}.example.com`,
      `${'a'.repeat(300)}.example.com`,
    ),
  },
  { weight: 2, arbitrary: hostileString },
  {
    weight: 1,
    arbitrary: fc
      .tuple(fc.stringMatching(/^[a-z0-9-]{1,12}$/), fc.constantFrom('.example.com', '.github.com', '.test'))
      .map(([l, d]) => l + d),
  },
);
const names = fc.oneof(
  { weight: 5, arbitrary: fc.array(name, { maxLength: 6 }) },
  {
    weight: 1,
    arbitrary: fc.integer({ min: 100, max: 500 }).map((n) => Array.from({ length: n }, (_, i) => `n${i}.evil.test`)),
  },
);
const typeUrl = fc.constantFrom(
  SECRET_TYPE_URL,
  SECRET_TYPE_URL,
  SECRET_TYPE_URL,
  '',
  'type.googleapis.com/envoy.config.cluster.v3.Cluster',
  'x',
);
const errorDetail = fc.option(
  fc.record({
    code: fc.integer({ min: 0, max: 20 }),
    message: fc.oneof(
      hostileString,
      fc.constant('-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----'),
      fc.constant('x'.repeat(100_000)),
    ),
  }),
  { nil: undefined },
);
const deltaRequest = fc.record(
  {
    type_url: typeUrl,
    resource_names_subscribe: names,
    resource_names_unsubscribe: fc.array(name, { maxLength: 3 }),
    initial_resource_versions: fc.dictionary(name, hostileString, { maxKeys: 3 }),
    response_nonce: fc.oneof(fc.constantFrom('', '1', '2', '999'), hostileString),
    error_detail: errorDetail,
    node: fc.record({ id: hostileString, cluster: hostileString }),
  },
  { requiredKeys: ['type_url'] },
);
const sotwRequest = fc.record(
  {
    type_url: typeUrl,
    resource_names: names,
    version_info: hostileString,
    response_nonce: fc.oneof(fc.constantFrom('', '1', '2'), hostileString),
    error_detail: errorDetail,
  },
  { requiredKeys: ['type_url'] },
);
const metadata = fc.record(
  {
    'x-sandbox-id': fc.oneof(
      fc.constantFrom('sb-1', 'sb-default', '', 'a,b', '*'),
      fc.array(fc.constantFrom('sb-1', 'sb-2'), { minLength: 2, maxLength: 2 }),
    ),
  },
  { requiredKeys: [] },
);

describe('SDS fuzzer (real startService with a CA)', () => {
  let heapBefore = 0;

  beforeAll(async () => {
    dir = tempDir('authproxy-fuzz-sds-');
    const ca = await generateCa('fuzz CA');
    const cert = dir.file('ca.crt', ca.certPem);
    const key = dir.file('ca.key', ca.keyPem);
    dir.dir('secrets');
    dir.file('secrets/TOKEN', 'tok\n');
    const config = dir.file(
      'config.yaml',
      `
rules:
  - name: github
    match_hosts: ["api.github.com", "a.example.com", "b.example.com", "deep.a.example.com"]
    headers:
      - { name: Authorization, type: workspace_secret, value: "Bearer {TOKEN}" }
access_control:
  deny_list: ["evil.test"]
`,
    );
    service = await startService(
      {
        config,
        secretsDir: join(dir.path, 'secrets'),
        listen: `unix:${join(dir.path, 'ext.sock')}`,
        sandboxId: 'sb-default',
        ca: { cert, key },
      },
      logs.log,
    );
    client = sdsClient(service.address);
    await expectLeaf();
    heapBefore = heapAfterGc();
  });

  afterAll(async () => {
    client?.close();
    await service?.close();
    dir?.cleanup();
  });

  it(
    'DeltaSecrets: random request streams are answered or closed; leaves only for intercepted hosts',
    async () => {
      await fuzz(
        'sds: DeltaSecrets streams',
        80,
        fc.asyncProperty(fc.array(deltaRequest, { minLength: 1, maxLength: 4 }), metadata, async (requests, md) => {
          const [{ responses, status }] = await Promise.all([
            run<WireDeltaResponse>('DeltaSecrets', requests, md as Record<string, string | string[]>),
            expectLeaf(),
          ]);
          expect([grpc.status.OK, grpc.status.INVALID_ARGUMENT], status.details).toContain(status.code);
          // Names as protobuf carries them (a lone surrogate becomes U+FFFD on the wire).
          const subscribed = new Set(
            requests
              .flatMap((r) => [...(r.resource_names_subscribe ?? []), ...(r.resource_names_unsubscribe ?? [])])
              .map(wellFormed),
          );
          for (const r of responses) {
            expect(r.type_url).toBe(SECRET_TYPE_URL);
            for (const res of r.resources ?? []) {
              expect(subscribed.has(res.name)).toBe(true);
              const host = canonicalAllowed(res.name);
              expect(host, `leaf for ${JSON.stringify(res.name)}`).toBeDefined();
              expect(decodeSecret(res.resource).name).toBe(res.name);
            }
            // (A name that was not valid UTF-16 comes back as protobuf's UTF-8 reading of it: not compared.)
            for (const removed of r.removed_resources ?? [])
              if (!/[\ud800-\udfff\ufffd]/.test(removed))
                expect(subscribed.has(removed), JSON.stringify(removed)).toBe(true);
          }
        }),
      );
    },
    fuzzTimeout(8000),
  );

  it(
    'StreamSecrets: random request streams are answered or closed; leaves only for intercepted hosts',
    async () => {
      await fuzz(
        'sds: StreamSecrets streams',
        80,
        fc.asyncProperty(fc.array(sotwRequest, { minLength: 1, maxLength: 4 }), metadata, async (requests, md) => {
          const { responses, status } = await run<WireSotwResponse>(
            'StreamSecrets',
            requests,
            md as Record<string, string | string[]>,
          );
          expect([grpc.status.OK, grpc.status.INVALID_ARGUMENT], status.details).toContain(status.code);
          const requested = new Set(requests.flatMap((r) => r.resource_names ?? []).map(wellFormed));
          for (const r of responses) {
            for (const secret of r.resources ?? []) {
              const s = decodeSecret(secret);
              expect(requested.has(s.name)).toBe(true);
              expect(canonicalAllowed(s.name), `leaf for ${JSON.stringify(s.name)}`).toBeDefined();
            }
          }
        }),
      );
      await expectLeaf();
    },
    fuzzTimeout(6000),
  );

  it(
    'garbage frames on the raw HTTP/2 stream: answered or reset, the service keeps serving',
    async () => {
      const session = rawSession(service.address);
      const paths = [
        '/envoy.service.secret.v3.SecretDiscoveryService/DeltaSecrets',
        '/envoy.service.secret.v3.SecretDiscoveryService/StreamSecrets',
        '/envoy.service.secret.v3.SecretDiscoveryService/FetchSecrets',
        '/envoy.service.secret.v3.SecretDiscoveryService/Nope',
      ];
      try {
        await fuzz(
          'sds: raw HTTP/2 frames',
          100,
          fc.asyncProperty(
            fc.constantFrom(...paths),
            fc.oneof(
              fc.uint8Array({ maxLength: 200 }).map((b) => [grpcFrame(b)]),
              fc.uint8Array({ maxLength: 40 }).map((b) => [Buffer.from(b)]),
              fc.constant([grpcFrame(Buffer.alloc(0), { declaredLength: 0x7fff_ffff })]),
            ),
            async (path, chunks) => {
              const { done } = rawStream(session, path, chunks, { end: true, waitMs: 10_000 });
              const outcome = await done;
              expect(outcome.timedOut, path).toBe(false);
              expect(outcome.httpStatus !== undefined || outcome.rstCode !== 0).toBe(true);
              expect(outcome.data.toString('latin1')).not.toContain('PRIVATE KEY');
            },
          ),
        );
      } finally {
        session.close();
      }
      await expectLeaf();
    },
    fuzzTimeout(6000),
  );

  it(
    'streams that never send anything are held while others are served, then released',
    async () => {
      const n = runs(100);
      // On their own connection (a local subchannel pool): cancelling thousands of streams at once trips
      // Node's HTTP/2 rapid-reset guard, which answers with a GOAWAY on that connection (as it should).
      const misbehaving = sdsClient(service.address, undefined, { 'grpc.use_local_subchannel_pool': 1 });
      const held = Array.from({ length: n }, (_, i) =>
        (misbehaving as unknown as Record<string, (md: grpc.Metadata) => Call>)[
          i % 2 ? 'DeltaSecrets' : 'StreamSecrets'
        ]!.call(misbehaving, new grpc.Metadata()),
      );
      for (const call of held) call.on('error', () => {});
      const session = rawSession(service.address);
      const raw = Array.from({ length: n }, (_, i) =>
        rawStream(
          session,
          `/envoy.service.secret.v3.SecretDiscoveryService/${i % 2 ? 'DeltaSecrets' : 'StreamSecrets'}`,
          [],
          { end: false, waitMs: 120_000 },
        ),
      );
      await Promise.all(Array.from({ length: 10 }, () => expectLeaf()));
      for (const call of held) call.cancel();
      misbehaving.close();
      session.destroy();
      await Promise.all(raw.map((r) => r.done));
      await expectLeaf();
      report('sds: held-open streams (gRPC, raw HTTP/2)', 2 * n);
    },
    fuzzTimeout(5000),
  );

  it('memory stays bounded, and no private key was ever logged', async () => {
    await expectLeaf();
    const growth = heapAfterGc() - heapBefore;
    report(
      `sds: heap growth after GC ${(growth / 1024 / 1024).toFixed(1)} MiB (bound ${HEAP_BOUND / 1024 / 1024} MiB)`,
      1,
    );
    expect(growth).toBeLessThan(HEAP_BOUND);
    expect(logs.leaks()).toBe(0);
  });
});
