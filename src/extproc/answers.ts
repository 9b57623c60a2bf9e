import { ProcessingResponse } from '../gen/envoy/service/ext_proc/v3/external_processor.js';
import type { Outcome } from '../contracts/engine.js';
import { continueResponse, toProcessingResponse } from './translate.js';

/**
 * Answers encoded once. A static rule's answer is the same bytes on every request, and so is a warm
 * callback's or a cached cloud token's until its value changes: the headers to set come as one array
 * that lives as long as the rule (its compiled config) or the cache entry, so the encoded answer is kept
 * in a WeakMap under that array and goes when it goes. grpc-js then writes the bytes (see
 * `EXT_PROC_WIRE_SERVICE`), with no ProcessingResponse objects built or encoded per request.
 */

/** What the ext_proc server writes: an answer already encoded, or a message grpc-js encodes. */
export type Answer = Buffer | ProcessingResponse;

/** The serializer of the ext_proc stream: bytes go out as they are. */
export function serializeAnswer(answer: Answer): Buffer {
  return Buffer.isBuffer(answer) ? answer : encode(answer);
}

function encode(message: ProcessingResponse): Buffer {
  const bytes = ProcessingResponse.encode(message).finish();
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

type Continue = Extract<Outcome, { kind: 'continue' }>;
/**
 * `set` array -> its encoded answer (with the `remove` list it was encoded with). An array seen only once
 * gets SEEN: an outcome built fresh for each request (a re-signed AWS request) is encoded directly and
 * never kept; one seen again is stable and cached from then on.
 */
const bySet = new WeakMap<
  Continue['set'],
  { readonly remove: Continue['remove']; readonly bytes: Buffer } | typeof SEEN
>();
const SEEN = 0;
/** Refusals by status and body; a small, closed set in practice, bounded all the same. */
const immediates = new Map<string, Buffer>();
const MAX_IMMEDIATES = 256;

/**
 * The request_headers answer to `outcome`, encoded (see toProcessingResponse for what it says). Cached for
 * a `continue` whose `set` array was seen before with the same `remove`, and for refusals.
 */
export function encodedAnswer(outcome: Outcome): Buffer {
  if (outcome.kind === 'continue') {
    const hit = bySet.get(outcome.set);
    if (hit !== undefined && hit !== SEEN && hit.remove === outcome.remove) return hit.bytes;
    const bytes = encode(toProcessingResponse(outcome));
    bySet.set(outcome.set, hit === undefined ? SEEN : { remove: outcome.remove, bytes });
    return bytes;
  }
  if (outcome.kind === 'immediate') {
    const key = `${outcome.status} ${outcome.body}`;
    let bytes = immediates.get(key);
    if (!bytes) {
      if (immediates.size >= MAX_IMMEDIATES) immediates.clear();
      immediates.set(key, (bytes = encode(toProcessingResponse(outcome))));
    }
    return bytes;
  }
  return encode(toProcessingResponse(outcome));
}

type OtherKind = Parameters<typeof continueResponse>[0];
const CONTINUES = new Map<OtherKind, Buffer>(
  (['responseHeaders', 'requestBody', 'responseBody', 'requestTrailers', 'responseTrailers'] as const).map((k) => [
    k,
    encode(continueResponse(k)),
  ]),
);

/** The CONTINUE answer (encoded once) for a message we never ask for but must not leave unanswered. */
export function encodedContinue(kind: OtherKind): Buffer {
  return CONTINUES.get(kind)!;
}
