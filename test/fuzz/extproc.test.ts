/**
 * A gRPC fuzzer against a real in-process authproxy (`startService` on a Unix socket, as in production):
 * - structurally valid but odd ProcessingRequest streams through a proto-loader client (Envoy's own
 *   protos): random and repeated pseudo-headers, invalid UTF-8, value vs raw_value, oversized header maps,
 *   every message kind in any order, random attributes, random and repeated stream metadata;
 * - malformed bytes on the raw HTTP/2 stream (node:http2): random bytes, mutated encodings of valid
 *   messages, frames whose length lies, compressed flags without an encoding, odd gRPC headers;
 * - streams that never send anything and streams that never end, held open while other work goes on.
 * Every stream must be answered or closed, the credential may only ever go to its own host over https,
 * a normal request running beside each case (and after everything) still gets its credential, and the
 * heap after GC stays within a bound.
 */
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import fc from 'fast-check';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ProcessingRequest } from '../../src/gen/envoy/service/ext_proc/v3/external_processor.js';
import { startService, type Service } from '../../src/serve/service.js';
import { answer, startCallbackServer } from '../helpers/callback-server.js';
import {
  exchange,
  extProcClient,
  headerMap,
  requestHeaders,
  setHeaders,
  type WireResponse,
} from '../helpers/extproc-client.js';
import { tempDir, type TempDir } from '../helpers/fs.js';
import { fuzz, fuzzTimeout, heapAfterGc, hostileString, report, runs, scanningLogger } from '../helpers/fuzz.js';
import { grpcFrame, rawSession, rawStream } from '../helpers/grpc-raw.js';

const CANARY = 'cnry-extproc-7Q3x-5150';
const PROCESS = '/envoy.service.ext_proc.v3.ExternalProcessor/Process';
/** A heap that grows more than this over a fuzz run (after GC) is a leak. */
const HEAP_BOUND = 64 * 1024 * 1024;

type Msg = Record<string, unknown>;

let dir: TempDir;
let service: Service;
let client: grpc.Client;
let callbacks: Awaited<ReturnType<typeof startCallbackServer>>;
const logs = scanningLogger([CANARY]);

/** A normal request that must get the credential, whatever else is going on. */
async function expectCredential(c: grpc.Client = client): Promise<void> {
  const { responses, status } = await exchange(c, [requestHeaders('api.github.com', '/repos/a/b')]);
  expect(status.code).toBe(grpc.status.OK);
  expect(setHeaders(responses[0]!).authorization).toBe(`Bearer ${CANARY}`);
}

/**
 * heapUsed after GC once the server has finished tearing down released streams (their closes arrive
 * asynchronously): sampled until two samples 200 ms apart agree within 1 MiB, at most 20 times; the lowest.
 */
async function settledHeap(): Promise<number> {
  let last = heapAfterGc();
  let lowest = last;
  for (let i = 0; i < 20; i++) {
    await new Promise((r) => setTimeout(r, 200));
    const now = heapAfterGc();
    lowest = Math.min(lowest, now);
    if (Math.abs(now - last) < 1024 * 1024) break;
    last = now;
  }
  return lowest;
}

/** The text of a header entry as authproxy reads it: raw_value (latin1) first, else value. */
const entryText = (h: { raw_value?: Uint8Array; value?: string }) =>
  h.raw_value && h.raw_value.length > 0 ? Buffer.from(h.raw_value).toString('latin1') : (h.value ?? '');

/**
 * Whether a request_headers message may get the credential at all: exactly one :authority naming
 * api.github.com (any case, port 443 or none, one trailing dot) and exactly one :scheme https.
 */
function mayCarryCredential(message: Msg): boolean {
  const headers =
    (
      (message.request_headers as Msg | undefined)?.headers as
        | { headers?: Array<{ key: string; raw_value?: Uint8Array; value?: string }> }
        | undefined
    )?.headers ?? [];
  const all = (key: string) => headers.filter((h) => h.key === key).map(entryText);
  const authority = all(':authority');
  const scheme = all(':scheme');
  return (
    authority.length === 1 &&
    scheme.length === 1 &&
    scheme[0] === 'https' &&
    /^api\.github\.com\.?(?::443)?$/i.test(authority[0]!)
  );
}

/** Every header value a response sets, as text. */
function valuesSet(r: WireResponse): string[] {
  const fromMutation = (m: unknown) =>
    (
      (m as { set_headers?: Array<{ header: { raw_value?: Buffer; value?: string } }> } | undefined)?.set_headers ?? []
    ).map((h) => Buffer.from(h.header.raw_value ?? []).toString() + (h.header.value ?? ''));
  return [
    ...fromMutation(r.request_headers?.response?.header_mutation),
    ...fromMutation(
      (r.request_body as { response?: { header_mutation?: unknown } } | undefined)?.response?.header_mutation,
    ),
    ...fromMutation(r.immediate_response?.headers),
    ...(r.immediate_response ? [Buffer.from(r.immediate_response.body ?? []).toString()] : []),
  ];
}

// ---- arbitraries: structurally valid, odd messages ----

const PSEUDO = [':method', ':scheme', ':authority', ':path'];
const AUTHORITIES = [
  'api.github.com',
  'API.GITHUB.COM',
  'api.github.com.',
  'api.github.com:443',
  'api.github.com:8443',
  'api.github.com:',
  'evil.test',
  'evil.test@api.github.com',
  'api.github.com@evil.test',
  'api.github.com,evil.test',
  '[::1]:443',
  '127.0.0.1',
  'full.example.com',
  'cb.example.com',
  'broken.example.com',
  '',
  '\u212api.github.com',
];
const bytes = fc.oneof(
  hostileString.map((s) => Buffer.from(s, 'utf8')),
  fc.uint8Array({ maxLength: 32 }).map((b) => Buffer.from(b)),
  fc.constantFrom(
    Buffer.from([0xff, 0xfe, 0xfd]),
    Buffer.from([0xc3]),
    Buffer.from([0xed, 0xa0, 0x80]),
    Buffer.from('api.github.com\u0000evil', 'utf8'),
    Buffer.from([0x61, 0x70, 0x69, 0x80]),
  ),
);
const headerEntry = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.record({
      key: fc.constantFrom(...PSEUDO),
      raw_value: fc.oneof(
        fc
          .constantFrom(...AUTHORITIES, 'GET', 'CONNECT', 'https', 'http', '/repos/a/b', '/user', '/a//../repos/x')
          .map((s) => Buffer.from(s, 'latin1')),
        bytes,
      ),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      key: fc.constantFrom(...PSEUDO),
      value: fc.oneof(fc.constantFrom(...AUTHORITIES, 'https'), hostileString),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      key: fc.oneof(
        fc.constantFrom(
          'authorization',
          'proxy-authorization',
          'host',
          'x-sandbox-id',
          'x-authproxy-original-dst',
          'x-authproxy-capture',
          'content-length',
          ':Authority',
          ':status',
          '',
        ),
        hostileString,
      ),
      raw_value: bytes,
    }),
  },
);
const headersValue = fc.record({
  headers: fc.record({ headers: fc.array(headerEntry, { maxLength: 12 }) }),
  end_of_stream: fc.boolean(),
});
const structValue = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: 'small' },
    fc.record({ string_value: hostileString }),
    fc.record({ number_value: fc.double() }),
    fc.record({ bool_value: fc.boolean() }),
    fc.record({ null_value: fc.constant('NULL_VALUE') }),
    fc.record({ struct_value: fc.record({ fields: fc.dictionary(hostileString, tie('value'), { maxKeys: 3 }) }) }),
  ),
})).value;
const attributes = fc.dictionary(
  fc.oneof(fc.constant('envoy.filters.http.ext_proc'), hostileString),
  fc.record({
    fields: fc.dictionary(
      fc.oneof(
        fc.constantFrom('filter_state["authproxy.connect_authority"]', 'connection.requested_server_name'),
        hostileString,
      ),
      structValue,
      { maxKeys: 3 },
    ),
  }),
  { maxKeys: 2 },
);

/** A valid request for the credentialed host, then damaged one way. */
const damagedValid = fc
  .tuple(fc.constantFrom('/repos/a/b', '/user', '/orgs/x'), fc.nat({ max: 9 }), bytes)
  .map(([path, how, junk]): Msg => {
    const msg = requestHeaders('api.github.com', path) as {
      request_headers: {
        headers: { headers: Array<{ key: string; raw_value?: Buffer; value?: string }> };
        end_of_stream: boolean;
      };
    };
    const h = msg.request_headers.headers.headers;
    switch (how) {
      case 0:
        h.push({ key: ':authority', raw_value: Buffer.from('evil.test') });
        break;
      case 1:
        h.push({ key: ':scheme', raw_value: Buffer.from('https') });
        break;
      case 2:
        h.splice(
          h.findIndex((x) => x.key === ':authority'),
          1,
        );
        break;
      case 3:
        h.find((x) => x.key === ':authority')!.raw_value = junk;
        break;
      case 4:
        h.find((x) => x.key === ':path')!.raw_value = junk;
        break;
      case 5:
        h.find((x) => x.key === ':authority')!.value = 'evil.test';
        break;
      case 6:
        h.find((x) => x.key === ':scheme')!.raw_value = Buffer.from('http');
        break;
      case 7:
        for (let i = 0; i < 2000; i++) h.push({ key: `x-pad-${i}`, raw_value: junk });
        break;
      case 8:
        h.unshift({ key: ':authority', value: 'evil.test' });
        break;
      default:
        msg.request_headers.end_of_stream = false;
    }
    return msg;
  });

const message: fc.Arbitrary<Msg> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record(
      { request_headers: headersValue, attributes: fc.option(attributes, { nil: undefined }) },
      { requiredKeys: ['request_headers'] },
    ),
  },
  { weight: 4, arbitrary: damagedValid },
  { weight: 1, arbitrary: fc.record({ response_headers: headersValue }) },
  { weight: 2, arbitrary: fc.record({ request_body: fc.record({ body: bytes, end_of_stream: fc.boolean() }) }) },
  { weight: 1, arbitrary: fc.record({ response_body: fc.record({ body: bytes, end_of_stream: fc.boolean() }) }) },
  {
    weight: 1,
    arbitrary: fc.record({
      request_trailers: fc.record({ trailers: fc.record({ headers: fc.array(headerEntry, { maxLength: 3 }) }) }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      response_trailers: fc.record({ trailers: fc.record({ headers: fc.array(headerEntry, { maxLength: 3 }) }) }),
    }),
  },
  { weight: 1, arbitrary: fc.constant({}) },
  { weight: 1, arbitrary: fc.record({ observability_mode: fc.boolean(), request_headers: headersValue }) },
  // A request for a full_request callback host: the stream waits for its body.
  {
    weight: 2,
    arbitrary: fc
      .constantFrom('full.example.com', 'cb.example.com', 'broken.example.com')
      .map((host) => requestHeaders(host, '/v1', {}, 'https', 'POST') as Msg)
      .map((m) => ({ ...m, request_headers: { ...(m.request_headers as Msg), end_of_stream: false } })),
  },
);
const metadata = fc.record(
  {
    'x-sandbox-id': fc.oneof(
      fc.constantFrom('sb-1', 'sb-default', '', ' ', 'a,b', 'x'.repeat(200)),
      fc.array(fc.constantFrom('sb-1', 'sb-2'), { minLength: 2, maxLength: 3 }),
      hostileString.filter((s) => /^[\x20-\x7e]*$/.test(s)),
    ),
    'x-authproxy-phase': fc.constantFrom('inject', 'connect', 'capture', 'CONNECT', '', 'bogus'),
  },
  { requiredKeys: [] },
);

// ---- arbitraries: bytes on the wire ----

const validBytes = (host: string, path: string) =>
  Buffer.from(
    ProcessingRequest.encode(
      ProcessingRequest.fromPartial({
        request: {
          $case: 'requestHeaders',
          value: {
            headers: {
              headers: [':method', 'GET', ':scheme', 'https', ':authority', host, ':path', path].flatMap((k, i, a) =>
                i % 2 ? [] : [{ key: k, value: '', rawValue: Buffer.from(a[i + 1]!) }],
              ),
            },
            endOfStream: true,
          },
        },
      }),
    ).finish(),
  );
const wireCase = fc.oneof(
  {
    weight: 2,
    arbitrary: fc.uint8Array({ maxLength: 200 }).map((b) => ({ chunks: [grpcFrame(b)], label: 'random message' })),
  },
  {
    weight: 2,
    arbitrary: fc
      .uint8Array({ maxLength: 64 })
      .map((b) => ({ chunks: [Buffer.from(b)], label: 'random bytes, no framing' })),
  },
  {
    weight: 3,
    arbitrary: fc
      .tuple(
        fc.constantFrom('api.github.com', 'evil.test'),
        fc.array(fc.tuple(fc.nat(), fc.nat({ max: 255 })), { minLength: 1, maxLength: 6 }),
        fc.nat(),
      )
      .map(([host, flips, cut]) => {
        const b = validBytes(host, '/repos/a/b');
        for (const [at, value] of flips) b[at % b.length] = value;
        return { chunks: [grpcFrame(b.subarray(0, b.length - (cut % 4)))], label: 'mutated valid message' };
      }),
  },
  {
    weight: 1,
    arbitrary: fc.nat({ max: 1 << 20 }).map((extra) => ({
      chunks: [
        grpcFrame(validBytes('api.github.com', '/user'), {
          declaredLength: validBytes('api.github.com', '/user').length + 1 + extra,
        }),
      ],
      label: 'length longer than the message',
    })),
  },
  {
    weight: 1,
    arbitrary: fc.constant({
      chunks: [grpcFrame(Buffer.alloc(0), { declaredLength: 0xffff_ffff })],
      label: 'length 4 GiB',
    }),
  },
  {
    weight: 1,
    arbitrary: fc.constant({
      chunks: [grpcFrame(validBytes('api.github.com', '/user'), { compressed: true })],
      label: 'compressed flag, no encoding',
    }),
  },
  {
    weight: 1,
    arbitrary: fc.constant({
      chunks: [grpcFrame(validBytes('api.github.com', '/user')), grpcFrame(validBytes('api.github.com', '/user'))],
      label: 'two requests',
    }),
  },
  { weight: 1, arbitrary: fc.constant({ chunks: [Buffer.from([0, 0, 0])], label: 'truncated frame header' }) },
  { weight: 1, arbitrary: fc.constant({ chunks: [], label: 'empty stream' }) },
);
const wireHeaders = fc.record(
  {
    'grpc-encoding': fc.constantFrom('gzip', 'deflate', 'identity', 'bogus', ''),
    'grpc-timeout': fc.constantFrom('1n', '1S', '99999999H', 'x', '-1m', '0m'),
    'content-type': fc.constantFrom('application/grpc', 'application/grpc+proto', 'application/json', 'text/plain', ''),
    'x-sandbox-id-bin': fc.constantFrom('!!!', 'AAAA', ''),
    'grpc-accept-encoding': fc.constantFrom('gzip', 'x'.repeat(1000)),
  },
  { requiredKeys: [] },
);

describe('ext_proc gRPC fuzzer (real startService)', () => {
  let heapBefore = 0;

  beforeAll(async () => {
    dir = tempDir('authproxy-fuzz-');
    callbacks = await startCallbackServer(answer({ Authorization: 'Bearer cb-value' }));
    dir.dir('secrets');
    dir.file('secrets/TOKEN', `${CANARY}\n`);
    const config = dir.file(
      'config.yaml',
      `
rules:
  - name: github-api
    match_hosts: ["api.github.com"]
    match_paths: ["/repos/*", "/user"]
    headers:
      - { name: Authorization, type: workspace_secret, value: "Bearer {TOKEN}" }
callbacks:
  - match_hosts: ["cb.example.com"]
    url: "${callbacks.url}"
    ttl_seconds: 60
  - match_hosts: ["full.example.com"]
    url: "${callbacks.url}"
    ttl_seconds: 60
    full_request: true
  - match_hosts: ["broken.example.com"]
    url: "http://127.0.0.1:1/resolve"
    ttl_seconds: 60
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
        egressAllowCidrs: '127.0.0.0/8',
      },
      logs.log,
    );
    client = extProcClient(service.address);
    await expectCredential();
    heapBefore = heapAfterGc();
  });

  afterEach(() => {
    if (process.env.FUZZ_HEAP_TRACE) console.log(`heap after GC: ${(heapAfterGc() / 1024 / 1024).toFixed(1)} MiB`);
  });

  afterAll(async () => {
    client?.close();
    await service?.close();
    await callbacks?.close();
    dir?.cleanup();
  });

  it(
    'odd but well-formed streams: each is answered or closed, the credential goes only to its host over https',
    async () => {
      const codes = new Map<number, number>();
      await fuzz(
        'ext_proc: odd ProcessingRequest streams',
        120,
        fc.asyncProperty(fc.array(message, { minLength: 1, maxLength: 4 }), metadata, async (messages, md) => {
          const [{ responses, status }] = await Promise.all([
            exchange(client, messages, md as Record<string, string | string[]>),
            expectCredential(),
          ]);
          codes.set(status.code, (codes.get(status.code) ?? 0) + 1);
          // Answered or closed with a status, never an internal error.
          expect([grpc.status.INTERNAL, grpc.status.UNKNOWN]).not.toContain(status.code);
          expect(responses.length).toBeLessThanOrEqual(messages.length);
          const leaked = responses.some((r) => valuesSet(r).some((v) => v.includes(CANARY)));
          if (leaked) {
            // Only for a request_headers message that names the credentialed host over https. (While a
            // full_request callback host waits for its body, a second request_headers message is still
            // decided on its own headers; Envoy never sends one, and it can't steer the credential elsewhere.)
            expect(messages.some((m) => 'request_headers' in m && mayCarryCredential(m))).toBe(true);
            expect(['connect', 'capture']).not.toContain(md['x-authproxy-phase']);
          }
        }),
      );
      expect(codes.get(grpc.status.OK) ?? 0).toBeGreaterThan(0);
    },
    fuzzTimeout(8000),
  );

  it('oversized header maps: the largest message grpc-js takes is answered, a larger one refused, the service stays up', async () => {
    const many = (n: number, size: number) => ({
      request_headers: {
        headers: headerMap({
          ':method': 'GET',
          ':scheme': 'https',
          ':authority': 'api.github.com',
          ':path': '/user',
          ...Object.fromEntries(Array.from({ length: n }, (_, i) => [`x-h-${i}`, 'v'.repeat(size)])),
        }),
        end_of_stream: true,
      },
    });
    const big = await exchange(client, [many(100_000, 8)]); // 100,000 headers, ~3 MiB
    expect(big.status.code).toBe(grpc.status.OK);
    expect(setHeaders(big.responses[0]!).authorization).toBe(`Bearer ${CANARY}`);
    const repeated = await exchange(client, [
      {
        request_headers: {
          headers: {
            headers: Array.from({ length: 50_000 }, () => ({
              key: ':authority',
              raw_value: Buffer.from('api.github.com'),
            })),
          },
          end_of_stream: true,
        },
      },
    ]);
    expect(repeated.status.code).toBe(grpc.status.OK);
    expect(JSON.stringify(repeated.responses)).not.toContain(CANARY);
    const huge = await exchange(client, [many(18, 1024 * 1024)]); // 18 MiB, above the receive limit
    expect(huge.status.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    await expectCredential();
    report('ext_proc: oversized header maps', 3);
  }, 60_000);

  it(
    'malformed bytes on the raw HTTP/2 stream: every stream is answered or reset, and nothing leaks',
    async () => {
      const session = rawSession(service.address);
      try {
        await fuzz(
          'ext_proc: raw HTTP/2 frames',
          120,
          fc.asyncProperty(wireCase, wireHeaders, fc.boolean(), async (c, headers, end) => {
            // Without `end` the server may rightly wait for the rest of a frame: such a stream is cancelled
            // after a short look (the hold test below keeps many of them open); with it, it must be closed.
            const { done } = rawStream(session, PROCESS, c.chunks, { headers, end, waitMs: end ? 10_000 : 20 });
            const [outcome] = await Promise.all([done, expectCredential()]);
            if (end) expect(outcome.timedOut, c.label).toBe(false);
            if (outcome.timedOut) return;
            if (outcome.grpcStatus !== undefined) expect(outcome.grpcStatus).toBeGreaterThanOrEqual(0);
            if (outcome.grpcStatus !== undefined) expect(outcome.grpcStatus).toBeLessThanOrEqual(16);
            // The credential comes back only for what still decodes as the valid request for its host.
            // (grpc-js reads a compressed flag under `grpc-encoding: identity` or none as uncompressed.)
            if (outcome.data.includes(CANARY))
              expect(['mutated valid message', 'two requests', 'compressed flag, no encoding']).toContain(c.label);
            // A stream is answered (HTTP status, gRPC status) or reset; it never just stops.
            expect(outcome.httpStatus !== undefined || outcome.rstCode !== 0).toBe(true);
          }),
        );
      } finally {
        session.close();
      }
      await expectCredential();
    },
    fuzzTimeout(8000),
  );

  it(
    'streams that never send anything, or never end, are held while other streams are served; then released, twice, with no growth',
    async () => {
      const n = runs(60);
      const holdAndRelease = async () => {
        const session = rawSession(service.address);
        const silent = Array.from({ length: n }, () =>
          rawStream(session, PROCESS, [], { end: false, waitMs: 120_000 }),
        );
        const unended = Array.from({ length: n }, (_, i) =>
          rawStream(
            session,
            PROCESS,
            [
              grpcFrame(
                i % 2
                  ? validBytes('full.example.com', '/v1')
                  : Buffer.from(
                      ProcessingRequest.encode(
                        ProcessingRequest.fromPartial({
                          request: { $case: 'responseBody', value: { body: Buffer.from('x'), endOfStream: false } },
                        }),
                      ).finish(),
                    ),
              ),
            ],
            { end: false, waitMs: 120_000 },
          ),
        );
        // On their own connection (a local subchannel pool): cancelling thousands of streams at once trips
        // Node's HTTP/2 rapid-reset guard, which answers with a GOAWAY on that connection (as it should).
        const misbehaving = extProcClient(service.address, undefined, { 'grpc.use_local_subchannel_pool': 1 });
        const grpcSilent = Array.from({ length: n }, () =>
          (misbehaving as unknown as { process(md: grpc.Metadata): grpc.ClientDuplexStream<object, unknown> }).process(
            new grpc.Metadata(),
          ),
        );
        for (const call of grpcSilent) call.on('error', () => {});
        // Other streams are unaffected while all of them are open.
        await Promise.all(Array.from({ length: 50 }, () => expectCredential()));
        const other = extProcClient(service.address);
        await expectCredential(other);
        other.close();
        // Release them all; the service keeps serving.
        for (const st of [...silent, ...unended]) st.stream.close();
        for (const call of grpcSilent) call.cancel();
        misbehaving.close();
        const outcomes = await Promise.all([...silent, ...unended].map((st) => st.done));
        expect(outcomes.every((o) => !o.timedOut)).toBe(true);
        session.close();
        await expectCredential();
      };
      // The first round may grow the heap once (grpc-js and HTTP/2 tables sized for the peak); a second
      // round of the same size must not grow it again: held streams leave nothing behind.
      await holdAndRelease();
      const afterFirst = await settledHeap();
      await holdAndRelease();
      const growth = (await settledHeap()) - afterFirst;
      report(
        `ext_proc: held-open streams (silent, unended, silent gRPC; 2 rounds; second round grew the heap ${(growth / 1024 / 1024).toFixed(1)} MiB)`,
        2 * 3 * n,
      );
      expect(growth).toBeLessThan(8 * 1024 * 1024);
    },
    fuzzTimeout(15_000),
  );

  it('memory stays bounded and the service still serves after all of it', async () => {
    await expectCredential();
    const growth = (await settledHeap()) - heapBefore;
    report(
      `ext_proc: heap growth after GC ${(growth / 1024 / 1024).toFixed(1)} MiB (bound ${HEAP_BOUND / 1024 / 1024} MiB)`,
      1,
    );
    expect(growth).toBeLessThan(HEAP_BOUND);
    expect(logs.lines()).toBeGreaterThan(0);
    expect(logs.leaks()).toBe(0);
  });
});
