/**
 * Retry timing of the SDK, kept apart from the HTTP code so it can be reasoned about (and tested) alone:
 * which answers are worth another try, how long to wait, and when to give up.
 */

/** How the client retries; every wait is bounded. */
export interface RetryOptions {
  /** Further attempts after the first (default 3). */
  readonly retries: number;
  /** First backoff delay; doubles per attempt, with full jitter (default 200 ms). */
  readonly baseDelayMs: number;
  /** Cap of one backoff delay (default 5 s). */
  readonly maxDelayMs: number;
  /** A `Retry-After` longer than this is not waited for: the error is returned instead (default 30 s). */
  readonly maxRetryAfterMs: number;
}

/** The defaults: up to 4 attempts, at most a few seconds of waiting unless the server asks for more. */
export const DEFAULT_RETRY: RetryOptions = { retries: 3, baseDelayMs: 200, maxDelayMs: 5000, maxRetryAfterMs: 30_000 };

/** 429 and 5xx, except 501 (not implemented: trying again cannot help). */
export function isRetryableStatus(status: number): boolean {
  return status === 429 || (status >= 500 && status <= 599 && status !== 501);
}

/**
 * Milliseconds a `Retry-After` header asks to wait: delay-seconds (`120`) or an HTTP date; undefined when
 * absent or unparsable. A date in the past means "now" (0).
 */
export function retryAfterMs(header: string | null | undefined, now: number = Date.now()): number | undefined {
  if (header === null || header === undefined) return undefined;
  const text = header.trim();
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  if (!/[a-z]/i.test(text)) return undefined;
  const at = Date.parse(text);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/** Exponential backoff with full jitter for attempt `n` (0 = the wait before the first retry). */
export function backoffMs(n: number, opts: RetryOptions, random: () => number = Math.random): number {
  const ceiling = Math.min(opts.maxDelayMs, opts.baseDelayMs * 2 ** Math.min(n, 20));
  return Math.floor(random() * ceiling);
}

/**
 * The wait before retry `n`, or undefined to stop: out of retries, or the server asked for longer than
 * `maxRetryAfterMs`. A `Retry-After` is honoured as asked (it is the server's statement of when to come back).
 */
export function nextDelay(n: number, opts: RetryOptions, retryAfter: number | undefined): number | undefined {
  if (n >= opts.retries) return undefined;
  if (retryAfter !== undefined) return retryAfter > opts.maxRetryAfterMs ? undefined : retryAfter;
  return backoffMs(n, opts);
}
