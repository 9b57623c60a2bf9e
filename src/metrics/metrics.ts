import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { CallbackFailureReason, DecisionOutcome, DecisionReason } from '../contracts/reasons.js';

export type { DecisionOutcome, DecisionReason } from '../contracts/reasons.js';

/**
 * Where a callback credential was found: `l1` in process, `l2` in Redis (also after waiting for another
 * replica's call), `miss` when this replica called the endpoint itself.
 */
export type CacheLevel = 'l1' | 'l2' | 'miss';

/** A request that waited for a call already running: in this process, or on another replica. */
export type WaitScope = 'local' | 'fleet';

/** How a background refresh ended: called, adopted another replica's fresher value, left to another, or failed. */
export type RefreshResult = 'ok' | 'adopted' | 'skipped' | 'failed';

/** How a reload of the mounted config file and secrets ended. */
export type ConfigReloadResult = 'ok' | 'failed';

/** Why an ext_proc stream was ended with a gRPC error: a handler exception (INTERNAL) or a message with nothing set. */
export type ExtProcErrorReason = 'handler_failed' | 'invalid_message';

/** Redis as the shared cache sees it. */
export type RedisState = 'up' | 'down';

/**
 * A counter with one or two labels whose hot-path increment is two Map probes on label values the code
 * already holds (string literals, hashes cached): no label hashing, no validation, no allocation.
 * prom-client's labelled `inc` costs more than a warm decision, so per-request counts are folded into
 * the prom-client metric only when Prometheus scrapes.
 */
class FastCounter {
  private readonly counts = new Map<string, Map<string, { labels: Record<string, string>; n: number }>>();

  constructor(
    registry: Registry,
    name: string,
    help: string,
    private readonly labelNames: [string] | [string, string],
  ) {
    const counts = this.counts;
    new Counter({
      name,
      help,
      labelNames,
      registers: [registry],
      collect() {
        this.reset();
        for (const inner of counts.values()) for (const { labels, n } of inner.values()) this.inc(labels, n);
      },
    });
  }

  inc(a: string, b = ''): void {
    let inner = this.counts.get(a);
    if (!inner) this.counts.set(a, (inner = new Map()));
    const hit = inner.get(b);
    if (hit) hit.n++;
    else
      inner.set(b, {
        labels:
          this.labelNames.length === 1
            ? { [this.labelNames[0]]: a }
            : { [this.labelNames[0]]: a, [this.labelNames[1]!]: b },
        n: 1,
      });
  }

  value(a: string, b = ''): number {
    return this.counts.get(a)?.get(b)?.n ?? 0;
  }
}

/**
 * The Prometheus metrics of one authproxy process, in their own registry (so several instances, as in
 * tests and benchmarks, don't collide). A small typed API instead of raw prom-client objects keeps label
 * values a closed set and the hot path cheap. Served on `/metrics` of `--metrics-listen`.
 */
export class Metrics {
  readonly registry = new Registry();
  private readonly decisions = new FastCounter(
    this.registry,
    'authproxy_decisions_total',
    'Decisions by outcome and reason',
    ['outcome', 'reason'],
  );
  private readonly lookups = new FastCounter(
    this.registry,
    'authproxy_callback_cache_lookups_total',
    'Callback credential lookups by the level that answered (l1, l2, miss)',
    ['level'],
  );
  private readonly calls = new Counter({
    name: 'authproxy_callback_calls_total',
    help: 'Calls to callback endpoints by result',
    labelNames: ['result'],
    registers: [this.registry],
  });
  private readonly failures = new Counter({
    name: 'authproxy_callback_failures_total',
    help: 'Failed callback calls by reason',
    labelNames: ['reason'],
    registers: [this.registry],
  });
  private readonly latency = new Histogram({
    name: 'authproxy_callback_duration_seconds',
    help: 'Callback call latency',
    labelNames: ['result'],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });
  private readonly waits = new FastCounter(
    this.registry,
    'authproxy_callback_single_flight_waits_total',
    'Lookups that waited for a call already running (local: same process, fleet: another replica)',
    ['scope'],
  );
  private readonly shared = new Counter({
    name: 'authproxy_callback_shared_failures_total',
    help: 'Lookups failed with the failure of the concurrent call they waited for',
    registers: [this.registry],
  });
  private readonly refreshes = new Counter({
    name: 'authproxy_callback_refreshes_total',
    help: 'Background refresh-ahead attempts by result',
    labelNames: ['result'],
    registers: [this.registry],
  });
  private readonly rejected = new Counter({
    name: 'authproxy_cache_rejected_values_total',
    help: 'Redis cache values that failed authentication or decoding (treated as misses)',
    registers: [this.registry],
  });
  private readonly redisErrors = new Counter({
    name: 'authproxy_redis_errors_total',
    help: 'Redis commands that failed (timeouts, connection loss)',
    registers: [this.registry],
  });
  private readonly reloads = new Counter({
    name: 'authproxy_config_reloads_total',
    help: 'Reloads of the mounted config file and secrets directory by result (ok: applied, failed: rejected, the last good config kept)',
    labelNames: ['result'],
    registers: [this.registry],
  });
  private readonly reloadOk = new Gauge({
    name: 'authproxy_config_last_reload_successful',
    help: '1 when the last load of the config file and secrets was applied, 0 while a change is rejected',
    registers: [this.registry],
  });
  private readonly reloadTime = new Gauge({
    name: 'authproxy_config_last_reload_success_timestamp_seconds',
    help: 'Unix time of the last applied load of the config file and secrets',
    registers: [this.registry],
  });
  private readonly extProcErrors = new Counter({
    name: 'authproxy_extproc_errors_total',
    help: 'ext_proc streams ended with a gRPC error by reason (handler_failed: INTERNAL, invalid_message: INVALID_ARGUMENT)',
    labelNames: ['reason'],
    registers: [this.registry],
  });
  private redisGauge: Gauge | undefined;
  private redisTransitions: Counter<'to'> | undefined;

  constructor(options: { defaultMetrics?: boolean } = {}) {
    if (options.defaultMetrics) collectDefaultMetrics({ register: this.registry });
    // Series exist from the start (at 0) so that rate() and absent-based alerts see them; the first load
    // happened before the process could serve, so it counts as applied.
    for (const result of ['ok', 'failed'] as const) this.reloads.inc({ result }, 0);
    for (const reason of ['handler_failed', 'invalid_message'] as const) this.extProcErrors.inc({ reason }, 0);
    this.reloadOk.set(1);
    this.reloadTime.set(Date.now() / 1000);
  }

  /** One reload of the config file and secrets: applied, or rejected (the last good config stays). */
  configReload(result: ConfigReloadResult): void {
    this.reloads.inc({ result });
    this.reloadOk.set(result === 'ok' ? 1 : 0);
    if (result === 'ok') this.reloadTime.set(Date.now() / 1000);
  }

  /** An ext_proc stream that authproxy ended with a gRPC error. */
  extProcError(reason: ExtProcErrorReason): void {
    this.extProcErrors.inc({ reason });
  }

  /** One decision of the engine; called on every request, so it costs one Map update. */
  decision(outcome: DecisionOutcome, reason: DecisionReason): void {
    this.decisions.inc(outcome, reason);
  }

  /** One callback credential lookup, by the level that answered it. */
  cacheLookup(level: CacheLevel): void {
    this.lookups.inc(level);
  }

  /** One call to a callback endpoint and how long it took; `failure` is set when it failed. */
  callbackCall(seconds: number, failure?: CallbackFailureReason): void {
    const result = failure ? 'failed' : 'ok';
    this.calls.inc({ result });
    this.latency.observe({ result }, seconds);
    if (failure) this.failures.inc({ reason: failure });
  }

  /** A lookup that joined a call already running instead of making its own. */
  singleFlightWait(scope: WaitScope): void {
    this.waits.inc(scope);
  }

  /** A lookup that failed because the call it waited for (on any replica) failed. */
  sharedFailure(): void {
    this.shared.inc();
  }

  /** One background refresh-ahead attempt. */
  refresh(result: RefreshResult): void {
    this.refreshes.inc({ result });
  }

  /** A Redis value that failed to decrypt or decode. */
  rejectedValue(): void {
    this.rejected.inc();
  }

  /** A Redis command that failed for a connectivity reason. */
  redisError(): void {
    this.redisErrors.inc();
  }

  /** The Redis state; the gauge exists only in processes that use Redis, so sidecars don't look "down". */
  redisState(state: RedisState): void {
    this.redisGauge ??= new Gauge({
      name: 'authproxy_redis_up',
      help: '1 when the shared Redis cache is usable, 0 when degraded to memory and direct calls',
      registers: [this.registry],
    });
    this.redisTransitions ??= new Counter({
      name: 'authproxy_redis_state_changes_total',
      help: 'Redis state changes',
      labelNames: ['to'],
      registers: [this.registry],
    });
    this.redisGauge.set(state === 'up' ? 1 : 0);
    this.redisTransitions.inc({ to: state });
  }

  /** Current value of a per-request counter, for tests and the benchmark. */
  count(kind: 'lookup', level: CacheLevel): number;
  count(kind: 'wait', scope: WaitScope): number;
  count(kind: 'decision', outcome: DecisionOutcome, reason: DecisionReason): number;
  count(kind: 'lookup' | 'wait' | 'decision', a: string, b?: string): number {
    if (kind === 'lookup') return this.lookups.value(a);
    return kind === 'wait' ? this.waits.value(a) : this.decisions.value(a, b);
  }

  /** The Prometheus text exposition, shaped for the side HTTP port's `extraRoutes`. */
  async exposition(): Promise<{ type: string; body: string }> {
    return { type: this.registry.contentType, body: await this.registry.metrics() };
  }
}
