import { headerNameProblem, headerValueProblem } from '../config/schema.js';
import type { CompiledCallback } from '../policy/compiled.js';
import type { Target } from '../policy/host.js';
import { SIGNATURE_HEADER, type CallbackSigner } from './signer.js';

/** Why a callback failed; a closed set, used in logs and metrics. */
export type CallbackFailureReason = 'status' | 'redirect' | 'transport' | 'timeout' | 'too_large' | 'malformed' | 'invalid_header';

/** A failed callback. The message names the reason and never a header value. */
export class CallbackFailure extends Error {
  constructor(readonly reason: CallbackFailureReason, detail: string) {
    super(`callback failed (${reason}): ${detail}`);
    this.name = 'CallbackFailure';
  }
}

/** Limits for one callback call. */
export interface CallbackLimits {
  readonly timeoutMs: number;
  readonly maxBodyBytes: number;
}

/** Defaults of the contract: 5 s timeout, 64 KiB body. */
export const DEFAULT_CALLBACK_LIMITS: CallbackLimits = { timeoutMs: 5000, maxBodyBytes: 64 * 1024 };

/** Headers a callback answered with, ready to inject. */
export type ResolvedHeaders = ReadonlyArray<readonly [name: string, value: string]>;

/**
 * Calls one callback endpoint as the contract says (signed JSON POST, redirects never followed) and
 * validates its answer. Any problem throws a CallbackFailure: the caller fails closed.
 */
export async function callCallback(
  callback: CompiledCallback,
  target: Target,
  sandboxId: string,
  signer: CallbackSigner,
  limits: CallbackLimits = DEFAULT_CALLBACK_LIMITS,
): Promise<ResolvedHeaders> {
  const body = JSON.stringify({ host: target.host, port: target.port, identity: { sandbox_id: sandboxId } });
  const headers = new Headers();
  for (const h of callback.requestHeaders) headers.set(h.name, h.value);
  headers.set('content-type', 'application/json');
  headers.set(SIGNATURE_HEADER, await signer.sign(callback.url, body, sandboxId));
  const signal = AbortSignal.timeout(limits.timeoutMs);
  let text: string;
  try {
    const res = await fetch(callback.url, { method: 'POST', body, headers, redirect: 'manual', signal });
    if (res.status >= 300 && res.status < 400) {
      await res.body?.cancel();
      throw new CallbackFailure('redirect', `answered ${res.status}; redirects are not followed`);
    }
    if (res.status < 200 || res.status >= 300) {
      await res.body?.cancel();
      throw new CallbackFailure('status', `answered ${res.status}`);
    }
    text = await readLimited(res, limits.maxBodyBytes);
  } catch (err) {
    if (err instanceof CallbackFailure) throw err;
    if (signal.aborted) throw new CallbackFailure('timeout', `no answer within ${limits.timeoutMs} ms`);
    throw new CallbackFailure('transport', transportDetail(err));
  }
  return parseAnswer(text);
}

async function readLimited(res: Response, max: number): Promise<string> {
  const declared = Number(res.headers.get('content-length') ?? '0');
  if (declared > max) {
    await res.body?.cancel();
    throw new CallbackFailure('too_large', `body over ${max} bytes`);
  }
  if (!res.body) return '';
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of res.body) {
    size += chunk.byteLength;
    if (size > max) throw new CallbackFailure('too_large', `body over ${max} bytes`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function transportDetail(err: unknown): string {
  const cause = (err as { cause?: { code?: string } })?.cause;
  return cause?.code ?? (err instanceof Error ? err.message.split('\n')[0]! : 'error');
}

/** Validates a callback's 2xx body: `{"headers": {name: value, ...}}`; unknown fields are ignored. */
export function parseAnswer(text: string): ResolvedHeaders {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new CallbackFailure('malformed', 'body is not JSON');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new CallbackFailure('malformed', 'body is not a JSON object');
  const headers = (parsed as { headers?: unknown }).headers;
  if (typeof headers !== 'object' || headers === null || Array.isArray(headers)) throw new CallbackFailure('malformed', '"headers" is not an object');
  const entries = Object.entries(headers);
  if (entries.length > 32) throw new CallbackFailure('invalid_header', 'more than 32 headers');
  const seen = new Set<string>();
  return entries.map(([name, value]) => {
    const nameProblem = headerNameProblem(name);
    if (nameProblem) throw new CallbackFailure('invalid_header', `headers.${name.slice(0, 64)}: ${nameProblem}`);
    if (seen.has(name.toLowerCase())) throw new CallbackFailure('invalid_header', `headers.${name}: given twice`);
    seen.add(name.toLowerCase());
    if (typeof value !== 'string') throw new CallbackFailure('invalid_header', `headers.${name}: value must be a string`);
    const valueProblem = headerValueProblem(value);
    if (valueProblem) throw new CallbackFailure('invalid_header', `headers.${name}: value ${valueProblem}`);
    return [name, value] as const;
  });
}
