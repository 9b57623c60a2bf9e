import type { Logger } from '../log.js';
import type { Metrics, RedisState } from '../metrics/metrics.js';
import { duplicateClient, type RedisClient } from './redis-url.js';

/** `starting` until the first connection is ready; then `up` or `down`. */
export type LinkState = 'starting' | RedisState;

/** How often a connection that is open but timing out is probed with PING. */
const PROBE_MS = 500;

/**
 * The shared cache's view of Redis: a command connection, a pub/sub connection, and whether Redis is
 * usable right now. It is `down` when the connection is lost, or when commands time out and a PING
 * does too; then requests are served from memory with direct callback calls, a PING probe runs until
 * Redis answers again, and ioredis reconnects with backoff. Each change is logged once (never with the
 * URL, which may carry a password) and mirrored in the `authproxy_redis_up` gauge.
 */
export class RedisLink {
  readonly subscriber: RedisClient;
  private state: LinkState = 'starting';
  private probing = false;
  private probeTimer: NodeJS.Timeout | undefined;
  private closed = false;
  private lastProblem = 'not connected';
  private readonly waiters = new Set<() => void>();

  constructor(
    readonly client: RedisClient,
    channel: string,
    onNotice: (message: string) => void,
    private readonly log: Logger,
    private readonly metrics?: Metrics,
  ) {
    this.subscriber = duplicateClient(client);
    client.on('ready', () => this.set('up'));
    client.on('close', () => this.set('down', 'connection closed'));
    client.on('error', (err: Error) => (this.lastProblem = problemOf(err)));
    this.subscriber.on('error', () => undefined);
    this.subscriber.on('ready', () => void this.subscriber.subscribe(channel).catch(() => undefined));
    this.subscriber.on('message', (ch: string, message: string) => {
      if (ch === channel) onNotice(message);
    });
  }

  /** True when the shared cache should use Redis for this request. */
  get up(): boolean {
    return this.state === 'up' && !this.closed;
  }

  /** The current state, for health reporting. */
  get status(): LinkState {
    return this.state;
  }

  /** Waits (at most `ms`) until Redis is up, so a fresh process starts with the shared cache. */
  async ready(ms: number): Promise<boolean> {
    if (this.up || this.closed) return this.up;
    let done: () => void = () => undefined;
    const woken = new Promise<void>((r) => (done = r));
    this.waiters.add(done);
    const timer = setTimeout(done, ms);
    await woken;
    clearTimeout(timer);
    this.waiters.delete(done);
    return this.up;
  }

  /**
   * Reports a failed command. Reply errors about data (a foreign value of the wrong type) say nothing
   * about Redis being reachable. A lost connection means down at once (ioredis reconnects, and `ready`
   * brings the state back). A timeout on an open connection may be Redis stalling or only this event
   * loop having been busy, so a PING decides: down only if it times out too, then probed until it answers.
   */
  failed(err: unknown): void {
    if (this.closed || !isConnectivityError(err)) return;
    this.metrics?.redisError();
    this.lastProblem = problemOf(err);
    if (this.client.status !== 'ready') this.set('down');
    else this.probe();
  }

  private probe(): void {
    if (this.probing || this.closed) return;
    this.probing = true;
    this.client.ping().then(
      () => {
        this.probing = false;
        if (this.client.status === 'ready') this.set('up');
      },
      (err: unknown) => {
        this.probing = false;
        this.lastProblem = problemOf(err);
        this.set('down');
        if (this.probeTimer || this.closed) return;
        this.probeTimer = setTimeout(() => {
          this.probeTimer = undefined;
          if (this.client.status === 'ready') this.probe(); // else the 'ready' event brings it back
        }, PROBE_MS);
        this.probeTimer.unref();
      },
    );
  }

  private set(next: RedisState, problem?: string): void {
    if (this.closed) return;
    if (problem) this.lastProblem = problem;
    if (next === this.state) return;
    const previous = this.state;
    this.state = next;
    this.metrics?.redisState(next);
    if (next === 'up') {
      this.log.info(
        { redis: 'up' },
        previous === 'starting'
          ? 'redis connected: callback results are shared with other replicas'
          : 'redis available again: shared callback cache resumed',
      );
    } else {
      this.log.warn(
        { redis: 'down', problem: this.lastProblem },
        'redis unavailable: serving callback results from memory and calling endpoints directly',
      );
    }
    if (next === 'up') for (const w of this.waiters) w();
  }

  /** Drops both connections at once (no QUIT round trip: pending commands fail, like a crash would). */
  async close(): Promise<void> {
    this.closed = true;
    if (this.probeTimer) clearTimeout(this.probeTimer);
    for (const w of this.waiters) w();
    this.subscriber.disconnect();
    this.client.disconnect();
  }
}

/** Redis reply errors that still mean "Redis can't serve now", as opposed to "this data is odd". */
const UNAVAILABLE_REPLIES = /^(LOADING|READONLY|CLUSTERDOWN|MASTERDOWN|TRYAGAIN|BUSY|NOAUTH|WRONGPASS|NOPERM)/;

function isConnectivityError(err: unknown): boolean {
  if (!(err instanceof Error)) return true;
  return err.name !== 'ReplyError' || UNAVAILABLE_REPLIES.test(err.message);
}

/** One short line about a Redis error: its code or first line, no URL and no value. */
function problemOf(err: unknown): string {
  const e = err as { code?: unknown; message?: unknown };
  if (typeof e?.code === 'string') return e.code;
  return typeof e?.message === 'string' ? e.message.split('\n')[0]!.slice(0, 120) : 'error';
}
