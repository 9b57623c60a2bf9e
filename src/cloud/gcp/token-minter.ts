import { isIP } from 'node:net';
import type { Agent } from 'node:https';
import { JWT } from 'google-auth-library';
import { CallbackFailure, type CallbackFailureReason } from '../../callbacks/client.js';
import type { EgressGuard } from '../../egress/guard.js';
import type { CompiledGcpRule } from '../../policy/compiled.js';
import { EgressRefusedError, guardedHttpsAgent } from '../shared/https-agent.js';

/** An OAuth2 access token as the token endpoint answered it. */
export interface AccessToken {
  readonly accessToken: string;
  /** Seconds from the request until the token stops working (`expires_in`). */
  readonly expiresInSeconds: number;
}

/** Mints access tokens for a `type: gcp` rule (an interface so tests and benchmarks can stand in). */
export interface TokenMinter {
  mint(rule: CompiledGcpRule): Promise<AccessToken>;
}

/**
 * A token that could not be minted: the endpoint refused (`status`), could not be reached (`transport`,
 * `timeout`, `private_destination`) or answered nonsense (`malformed`). A CallbackFailure so that the
 * shared cache hands one failure to every replica waiting on the same key. The message names Google
 * Cloud token minting and what went wrong (a status, an OAuth2 error code), never a key or a token.
 */
export class GcpTokenFailure extends CallbackFailure {
  constructor(reason: CallbackFailureReason, detail: string) {
    super(reason, detail);
    this.name = 'GcpTokenFailure';
    this.message = `Google Cloud token minting failed: ${detail}`;
  }
}

/** Settings of authproxy's own token endpoint client. */
export interface MinterSettings {
  /** Pins token endpoint connections to the address the guard checked, like callback calls. */
  readonly egress?: EgressGuard;
  /** One mint, connect to answer; at most the callback timeout, so a shared-cache lock holder finishes in time. */
  readonly timeoutMs: number;
  /** Replaces the guarded agent (tests: an agent that trusts a test CA). */
  readonly agent?: Agent;
}

/** Most bytes of a token endpoint answer that are read. */
const MAX_ANSWER_BYTES = 64 * 1024;
/** A token goes into `Authorization: Bearer <token>`: visible ASCII, no spaces, within a header value's limit. */
const TOKEN = /^[\x21-\x7e]{1,8000}$/;
const OAUTH_ERROR = /^[a-z_]{1,64}$/;
/** The code of the error the guarded agent's lookup fails with (EgressRefusedError). */
const GUARD_CODE = new EgressRefusedError('').code;

/**
 * The JWT bearer grant (RFC 7523) with google-auth-library's `JWT` client: it signs the assertion (RS256,
 * `iss` = client_email, `scope`, `iat`, `exp`) with the key and POSTs it. The library always posts to
 * Google's default endpoint, so a request interceptor sends it to the key's own `token_uri` (already
 * checked against Google's endpoints and --gcp-token-uri-allow) with `aud` set to match; the same
 * interceptor turns off the library's retries (a failure is a 502 now, the next request tries again),
 * redirects and oversized answers. Connections go through the egress guard's pinning agent. The library's
 * own debug logging is never attached, so no token can reach a log through it.
 */
export function googleTokenMinter(settings: MinterSettings): TokenMinter {
  const agent = settings.agent ?? guardedHttpsAgent(settings.egress);
  return {
    async mint(rule) {
      const target = new URL(rule.tokenUri);
      // An IP-literal host is dialled without a lookup, so the guard checks it here, before connecting.
      const literal = target.hostname.replace(/^\[|\]$/g, '');
      if (settings.egress && isIP(literal) !== 0) {
        const checked = await settings.egress.check(literal);
        if (!checked.ok) throw new GcpTokenFailure('private_destination', `the token endpoint is a ${checked.detail}`);
      }
      const jwt = new JWT({
        email: rule.clientEmail,
        key: rule.privateKey,
        ...(rule.privateKeyId ? { keyId: rule.privateKeyId } : {}),
        scopes: [...rule.scopes],
        additionalClaims: { aud: rule.tokenUri },
        transporterOptions: { agent, timeout: settings.timeoutMs },
        // Leaves out the library's request/response interceptors: with GOOGLE_SDK_NODE_LOGGING set they log
        // the token endpoint's answer, access token included.
        useAuthRequestParameters: false,
      });
      let answer: unknown;
      jwt.transporter.interceptors.request.add({
        resolved: async (config) => {
          config.url = new URL(target);
          config.redirect = 'manual';
          config.retryConfig = { ...config.retryConfig, retry: 0, noResponseRetries: 0 };
          Object.assign(config, { size: MAX_ANSWER_BYTES });
          return config;
        },
      });
      jwt.transporter.interceptors.response.add({
        resolved: async (res) => {
          answer = res.data;
          return res;
        },
      });
      try {
        await jwt.authorize();
      } catch (err) {
        throw classify(err);
      }
      return parseTokenAnswer(answer);
    },
  };
}

/** Checks a 2xx answer: `{access_token, expires_in, token_type?: "Bearer"}`; anything else is malformed. */
export function parseTokenAnswer(data: unknown): AccessToken {
  if (typeof data !== 'object' || data === null || Array.isArray(data))
    throw new GcpTokenFailure('malformed', 'the token endpoint did not answer a JSON object');
  const { access_token: token, expires_in: expires, token_type: type } = data as Record<string, unknown>;
  if (typeof token !== 'string' || !TOKEN.test(token))
    throw new GcpTokenFailure('malformed', 'the token endpoint answered no usable access_token');
  if (type !== undefined && (typeof type !== 'string' || type.toLowerCase() !== 'bearer'))
    throw new GcpTokenFailure('malformed', 'the token endpoint answered a token_type other than Bearer');
  const seconds =
    typeof expires === 'number'
      ? expires
      : typeof expires === 'string' && /^\d{1,9}$/.test(expires)
        ? Number(expires)
        : NaN;
  if (!Number.isFinite(seconds) || seconds <= 0)
    throw new GcpTokenFailure('malformed', 'the token endpoint answered no valid expires_in');
  return { accessToken: token, expiresInSeconds: seconds };
}

/** A gaxios error as a GcpTokenFailure: the HTTP status and OAuth2 error code, or what kept the call from an answer. */
function classify(err: unknown): GcpTokenFailure {
  if (err instanceof GcpTokenFailure) return err;
  const status = (err as { response?: { status?: unknown } })?.response?.status;
  if (typeof status === 'number') {
    const code = (err as { response?: { data?: { error?: unknown } } }).response?.data?.error;
    const named = typeof code === 'string' && OAUTH_ERROR.test(code) ? ` (${code})` : '';
    return new GcpTokenFailure(
      status >= 300 && status < 400 ? 'redirect' : 'status',
      `the token endpoint answered ${status}${named}`,
    );
  }
  const names: string[] = [];
  // gaxios keeps the fetch error as `cause`; node-fetch keeps only the socket error's code and message.
  for (let e: unknown = err; e && names.length < 12; e = (e as { cause?: unknown }).cause) {
    const code = String((e as { code?: unknown }).code ?? '');
    if (e instanceof EgressRefusedError || code === GUARD_CODE) {
      const reason =
        /reason: (host [^\n]{1,160})$/.exec(String((e as { message?: unknown }).message))?.[1] ??
        'host is refused by the egress guard';
      return new GcpTokenFailure('private_destination', `the token endpoint ${reason}`);
    }
    names.push(String((e as { name?: unknown }).name ?? ''), code, String((e as { type?: unknown }).type ?? ''));
  }
  if (names.some((n) => n === 'AbortError' || n === 'TimeoutError' || n === 'aborted'))
    return new GcpTokenFailure('timeout', 'the token endpoint did not answer in time');
  if (names.includes('max-size'))
    return new GcpTokenFailure('too_large', `the token endpoint answered more than ${MAX_ANSWER_BYTES} bytes`);
  const code = names.find((n) => /^E[A-Z_]{2,40}$|^[A-Z_]{4,40}$/.test(n));
  return new GcpTokenFailure('transport', `the token endpoint could not be reached (${code ?? 'error'})`);
}
