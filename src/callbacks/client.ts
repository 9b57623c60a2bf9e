import { headerNameProblem, headerValueProblem } from '../config/schema.js';
import type { CompiledCallback } from '../policy/compiled.js';
import type { Target } from '../policy/host.js';
import { isIP } from 'node:net';
import type { Agent, ProxyAgent } from 'undici';
import type { EgressGuard } from '../egress/guard.js';
import { guardedLookup } from '../egress/lookup.js';
import { SIGNATURE_HEADER, type CallbackSigner } from './signer.js';

import type { CallbackFailureReason } from '../contracts/reasons.js';

export type { CallbackFailureReason } from '../contracts/reasons.js';

/** A failed callback. The message names the reason and never a header value. */
export class CallbackFailure extends Error {
  constructor(
    readonly reason: CallbackFailureReason,
    detail: string,
  ) {
    super(`callback failed (${reason}): ${detail}`);
    this.name = 'CallbackFailure';
  }
}

/** Limits for one callback call. */
export interface CallbackLimits {
  readonly timeoutMs: number;
  readonly maxBodyBytes: number;
  /**
   * Checks the callback URL's host every time a connection is opened (resolve, check every address,
   * connect to the checked one), so a callback can't be pointed at a private or metadata address by DNS.
   * `authproxy serve` always sets it; without it (library use, tests) the system resolver is used as is.
   */
  readonly egress?: EgressGuard;
}

/** Defaults of the contract: 5 s timeout, 64 KiB body. */
export const DEFAULT_CALLBACK_LIMITS: CallbackLimits = { timeoutMs: 5000, maxBodyBytes: 64 * 1024 };

/** Headers a callback answered with, ready to inject. */
export type ResolvedHeaders = ReadonlyArray<readonly [name: string, value: string]>;

/** The `identity` member of a callback body (LangSmith's SandboxCallbackIdentity); `organization_id` only when set. */
export interface CallbackIdentity {
  readonly tenant_id: string;
  readonly sandbox_id: string;
  readonly organization_id?: string;
}

/** The `request` member of a `full_request` callback body (LangSmith's SandboxCallbackRequest). */
export interface CallbackRequestSnapshot {
  method: string;
  url: string;
  scheme: string;
  host: string;
  path: string;
  query?: string;
  headers: Record<string, string[]>;
  body_base64: string;
  body_truncated: boolean;
}

/** The exact body of one callback request: `{host, port, identity, request?}`, in that order. */
export function callbackBody(target: Target, identity: CallbackIdentity, request?: CallbackRequestSnapshot): string {
  const id =
    identity.organization_id === undefined
      ? { tenant_id: identity.tenant_id, sandbox_id: identity.sandbox_id }
      : { tenant_id: identity.tenant_id, sandbox_id: identity.sandbox_id, organization_id: identity.organization_id };
  return JSON.stringify(
    request === undefined
      ? { host: target.host, port: target.port, identity: id }
      : { host: target.host, port: target.port, identity: id, request },
  );
}

/**
 * Calls one callback endpoint as the contract says (JSON POST signed as LangSmith signs it, redirects
 * never followed) and validates its answer. `request` (a `full_request` callback's snapshot) is added to
 * the body when given. Any problem throws a CallbackFailure: the caller fails closed.
 */
export async function callCallback(
  callback: CompiledCallback,
  target: Target,
  identity: CallbackIdentity,
  signer: CallbackSigner,
  limits: CallbackLimits = DEFAULT_CALLBACK_LIMITS,
  request?: CallbackRequestSnapshot,
): Promise<ResolvedHeaders> {
  // Signed and sent as the same bytes, so `body_sha256` is the hash of exactly what the endpoint reads.
  const body = Buffer.from(callbackBody(target, identity, request), 'utf8');
  const headers: Record<string, string> = {};
  for (const h of callback.requestHeaders) headers[h.name.toLowerCase()] = h.value;
  // Set after the configured headers: the schema refuses these names there, and they always win.
  headers['content-type'] = 'application/json';
  headers[SIGNATURE_HEADER.toLowerCase()] = await signer.sign(callback.url, body);
  const signal = AbortSignal.timeout(limits.timeoutMs);
  let text: string;
  try {
    if (limits.egress) await checkLiteral(limits.egress, callback.url);
    const init = { method: 'POST', body, headers, redirect: 'manual', signal } as const;
    const res = (
      limits.egress ? await guardedFetch(limits.egress, callback.url, init) : await fetch(callback.url, init)
    ) as Response;
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
    const refused = guardRefusal(err);
    if (refused) throw new CallbackFailure('private_destination', refused);
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
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
    throw new CallbackFailure('malformed', 'body is not a JSON object');
  const headers = (parsed as { headers?: unknown }).headers;
  if (typeof headers !== 'object' || headers === null || Array.isArray(headers))
    throw new CallbackFailure('malformed', '"headers" is not an object');
  const entries = Object.entries(headers);
  if (entries.length > 32) throw new CallbackFailure('invalid_header', 'more than 32 headers');
  const seen = new Set<string>();
  return entries.map(([name, value]) => {
    const nameProblem = headerNameProblem(name);
    if (nameProblem) throw new CallbackFailure('invalid_header', `headers.${name.slice(0, 64)}: ${nameProblem}`);
    if (seen.has(name.toLowerCase())) throw new CallbackFailure('invalid_header', `headers.${name}: given twice`);
    seen.add(name.toLowerCase());
    if (typeof value !== 'string')
      throw new CallbackFailure('invalid_header', `headers.${name}: value must be a string`);
    const valueProblem = headerValueProblem(value);
    if (valueProblem) throw new CallbackFailure('invalid_header', `headers.${name}: value ${valueProblem}`);
    return [name, value] as const;
  });
}

/** The error a guarded lookup fails with: the callback host resolves to an address that may not be dialled. */
class EgressRefused extends Error {
  readonly code = 'EAUTHPROXY_EGRESS';
}

function guardRefusal(err: unknown): string | undefined {
  for (let e: unknown = err; e; e = (e as { cause?: unknown }).cause) if (e instanceof EgressRefused) return e.message;
  return undefined;
}

/** An IP-literal URL host is dialled without any lookup, so the guard checks it here, before connecting. */
async function checkLiteral(guard: EgressGuard, url: string): Promise<void> {
  const host = new URL(url).hostname;
  const bare = host.startsWith('[') ? host.slice(1, -1) : host;
  if (isIP(bare) === 0) return;
  const r = await guard.check(bare);
  if (!r.ok) throw new CallbackFailure('private_destination', `callback host is a ${r.detail}`);
}

const agents = new WeakMap<EgressGuard, Agent>();
/**
 * undici, loaded with the first guarded call: about 4 MB of heap that a process with no callback (or
 * one never called) doesn't carry, which makes every garbage collection of the request path shorter.
 */
let undici: Promise<typeof import('undici')> | undefined;

/** fetch through the guard's connection pool (undici's fetch, which takes a dispatcher). */
async function guardedFetch(guard: EgressGuard, url: string, init: RequestInit): Promise<unknown> {
  // A failed load is not kept: the next call tries again (this one fails closed as a transport failure).
  const loaded = await (undici ??= import('undici').catch((err: unknown) => {
    undici = undefined;
    throw err;
  }));
  const proxied = await proxyDispatcher(guard, url, loaded);
  return loaded.fetch(url, { ...(init as object), dispatcher: proxied ?? guardedAgent(guard, loaded.Agent) });
}

const proxyAgents = new WeakMap<EgressGuard, ProxyAgent>();

/**
 * With `--upstream-proxy`, a callback host outside `--upstream-no-proxy` is checked by the guard (it must
 * not resolve to a private address), then reached through the proxy (undici's ProxyAgent: a CONNECT
 * tunnel, TLS to the callback inside it). Undefined: dial directly, pinned by `guardedAgent`.
 */
async function proxyDispatcher(
  guard: EgressGuard,
  url: string,
  loaded: typeof import('undici'),
): Promise<ProxyAgent | undefined> {
  const route = guard.upstream;
  const parsed = new URL(url);
  const port = Number(parsed.port || (parsed.protocol === 'https:' ? 443 : 80));
  if (!route?.proxy || route.direct(parsed.hostname, port)) return undefined;
  const checked = await guard.check(parsed.hostname);
  if (!checked.ok)
    throw new EgressRefused(`callback host ${checked.reason === 'unresolvable' ? 'does not resolve' : checked.detail}`);
  let agent = proxyAgents.get(guard);
  if (!agent) {
    agent = new loaded.ProxyAgent({ uri: route.proxy.url });
    proxyAgents.set(guard, agent);
  }
  return agent;
}

/**
 * One connection pool per guard whose every new connection resolves the host through the guard and
 * connects to exactly the address it checked; TLS still verifies the URL's hostname (SNI is the name).
 */
function guardedAgent(guard: EgressGuard, AgentClass: typeof Agent): Agent {
  let agent = agents.get(guard);
  if (!agent) {
    const lookup = guardedLookup(guard, (reason) => new EgressRefused(`callback host ${reason}`));
    agent = new AgentClass({ connect: { lookup } as object });
    agents.set(guard, agent);
  }
  return agent;
}
