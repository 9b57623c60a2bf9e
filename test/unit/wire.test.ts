import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ProcessingRequest } from '../../src/gen/envoy/service/ext_proc/v3/external_processor.js';
import { readRequest } from '../../src/extproc/wire.js';
import { toPolicyRequest, wirePolicyRequest } from '../../src/extproc/translate.js';
import { capturedFrom, wireCapturedFrom } from '../../src/extproc/capture.js';

// The wire reader must read exactly what the generated decoder reads, for every message it may meet.
const KEYS = [
  ':method',
  ':scheme',
  ':authority',
  ':path',
  'x-authproxy-original-dst',
  'x-authproxy-capture',
  'user-agent',
  ':Authority',
  'x-request-id',
];
const text = fc.oneof(
  fc.constantFrom('GET', 'https', 'http', 'api.github.com', '/user', '203.0.113.1:443', 'tls', '', 'é'),
  fc.string({ maxLength: 8 }),
);
const header = fc.record({
  key: fc.constantFrom(...KEYS),
  value: text,
  rawValue: fc.oneof(
    fc.constant(Buffer.alloc(0)),
    text.map((s) => Buffer.from(s, 'utf8')),
    fc.uint8Array({ maxLength: 6 }).map((b) => Buffer.from(b)),
  ),
});
const headers = fc.record({
  headers: fc.option(fc.record({ headers: fc.array(header, { maxLength: 10 }) }), { nil: undefined }),
  attributes: fc.constant({}),
  endOfStream: fc.boolean(),
});
const structValue = fc.oneof(
  text,
  fc.double({ noNaN: true }),
  fc.boolean(),
  fc.constant(null),
  fc.constant({ nested: 'x' }),
);
const attributes = fc.dictionary(
  fc.constantFrom('envoy.filters.http.ext_proc', 'other'),
  fc.dictionary(
    fc.constantFrom('filter_state["authproxy.connect_authority"]', 'connection.requested_server_name', 'x'),
    structValue,
    { maxKeys: 3 },
  ),
  { maxKeys: 2 },
);
const request = fc.oneof(
  headers.map((value) => ({ $case: 'requestHeaders' as const, value })),
  headers.map((value) => ({ $case: 'responseHeaders' as const, value })),
  fc
    .record({ body: fc.uint8Array({ maxLength: 8 }).map((b) => Buffer.from(b)), endOfStream: fc.boolean() })
    .map((value) => ({ $case: 'requestBody' as const, value })),
  fc.constant(undefined),
);
const message = fc
  .record({ request, attributes, observabilityMode: fc.boolean() })
  .map((m) => ({ ...m, metadataContext: undefined }) as ProcessingRequest);

describe('the wire reader agrees with the generated decoder', () => {
  it('on which message it is, the policy request, the capture headers, end_of_stream and the header map', () => {
    fc.assert(
      fc.property(message, fc.boolean(), (m, inTunnel) => {
        const bytes = Buffer.from(ProcessingRequest.encode(m).finish());
        const decoded = ProcessingRequest.decode(bytes);
        const wire = readRequest(bytes);
        expect(wire.kind).toBe(decoded.request?.$case);
        if (decoded.request?.$case === 'requestHeaders') {
          const value = decoded.request.value;
          const fromWire = wirePolicyRequest(wire, inTunnel);
          const fromDecoder = toPolicyRequest(value, decoded.attributes, inTunnel);
          const { headers: wireHeaders, ...wireRest } = fromWire ?? {};
          const { headers: decoderHeaders, ...decoderRest } = fromDecoder ?? {};
          expect(fromWire === undefined).toBe(fromDecoder === undefined);
          expect(wireRest).toEqual(decoderRest);
          // match_headers reads the same value (or absence, or ambiguity) either way
          for (const h of [...(value.headers?.headers ?? []).map((x) => x.key.toLowerCase()), 'absent-header']) {
            expect(wireHeaders?.lookup(h)).toBe(decoderHeaders?.lookup(h));
          }
          expect(wireCapturedFrom(wire)).toEqual(capturedFrom(value));
          expect(wire.endOfStream).toBe(value.endOfStream);
          expect(wire.headerList()).toEqual(value.headers?.headers ?? []);
        }
        if (decoded.request?.$case === 'requestBody') expect(wire.body()).toEqual(decoded.request.value);
      }),
      { numRuns: 2000 },
    );
  });

  it('throws on malformed bytes instead of guessing', () => {
    const valid = Buffer.from(
      ProcessingRequest.encode({
        request: {
          $case: 'requestHeaders',
          value: {
            headers: { headers: [{ key: ':authority', value: '', rawValue: Buffer.from('api.github.com') }] },
            attributes: {},
            endOfStream: true,
          },
        },
        attributes: {},
        observabilityMode: false,
        metadataContext: undefined,
      }).finish(),
    );
    expect(() => readRequest(valid.subarray(0, valid.length - 3))).toThrow('malformed ProcessingRequest');
    expect(() => readRequest(Buffer.from([0x12, 0x7f]))).toThrow('malformed ProcessingRequest');
    expect(() => readRequest(Buffer.from([0x00]))).toThrow('malformed ProcessingRequest');
    expect(() => readRequest(Buffer.from([0x17]))).toThrow('malformed ProcessingRequest');
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (b) => {
        try {
          readRequest(Buffer.from(b));
        } catch (err) {
          expect((err as Error).message).toBe('malformed ProcessingRequest');
        }
      }),
      { numRuns: 2000 },
    );
  });
});
