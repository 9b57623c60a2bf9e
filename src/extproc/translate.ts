import type { HttpHeaders, ProcessingResponse } from '../gen/envoy/service/ext_proc/v3/external_processor.js';
import { HeaderValueOption_HeaderAppendAction } from '../gen/envoy/config/core/v3/base.js';
import type { PolicyRequest } from '../policy/decide.js';
import type { Outcome } from '../runtime/engine.js';

/**
 * Reads the request pseudo-headers from Envoy's header map (raw_value first, as Envoy 1.32+ sends it).
 * Returns undefined when a pseudo-header is missing or repeated: such a request is ambiguous.
 */
export function toPolicyRequest(headers: HttpHeaders | undefined): PolicyRequest | undefined {
  const found: Record<string, string | null> = { ':method': null, ':scheme': null, ':authority': null, ':path': null };
  for (const h of headers?.headers?.headers ?? []) {
    if (!(h.key in found)) continue;
    if (found[h.key] !== null) return undefined;
    found[h.key] = h.rawValue.length > 0 ? h.rawValue.toString('latin1') : h.value;
  }
  const method = found[':method'];
  const authority = found[':authority'];
  if (!method || !authority) return undefined;
  return { method, scheme: found[':scheme'] ?? 'https', authority, path: found[':path'] ?? '' };
}

const OVERWRITE = HeaderValueOption_HeaderAppendAction.OVERWRITE_IF_EXISTS_OR_ADD;

/**
 * Builds the ProcessingResponse for a request_headers message: header values in `raw_value` only,
 * `append_action: OVERWRITE_IF_EXISTS_OR_ADD` with `append` unset, and refusals as ImmediateResponse.
 */
export function toProcessingResponse(outcome: Outcome): ProcessingResponse {
  if (outcome.kind === 'immediate') {
    return {
      response: {
        $case: 'immediateResponse',
        value: {
          status: { code: outcome.status },
          headers: {
            setHeaders: [{ header: { key: 'content-type', value: '', rawValue: Buffer.from('text/plain') }, appendAction: OVERWRITE, keepEmptyValue: false }],
            removeHeaders: [],
          },
          body: Buffer.from(outcome.body),
          details: 'authproxy',
        },
      },
      modeOverride: undefined,
      overrideMessageTimeout: undefined,
    };
  }
  return {
    response: {
      $case: 'requestHeaders',
      value: {
        response: {
          status: 0,
          headerMutation: {
            setHeaders: outcome.set.map(([key, value]) => ({
              header: { key: key.toLowerCase(), value: '', rawValue: Buffer.from(value, 'utf8') },
              appendAction: OVERWRITE,
              keepEmptyValue: false,
            })),
            removeHeaders: [...outcome.remove],
          },
          bodyMutation: undefined,
          trailers: undefined,
          clearRouteCache: false,
        },
      },
    },
    modeOverride: undefined,
    overrideMessageTimeout: undefined,
  };
}

/** The CONTINUE answer for messages we never ask for but must not leave unanswered. */
export function continueResponse(kind: 'responseHeaders' | 'requestBody' | 'responseBody' | 'requestTrailers' | 'responseTrailers'): ProcessingResponse {
  const common = { status: 0, headerMutation: undefined, bodyMutation: undefined, trailers: undefined, clearRouteCache: false };
  const response =
    kind === 'requestTrailers' || kind === 'responseTrailers'
      ? { $case: kind, value: { headerMutation: undefined } }
      : { $case: kind, value: { response: common } };
  return { response, modeOverride: undefined, overrideMessageTimeout: undefined } as ProcessingResponse;
}
