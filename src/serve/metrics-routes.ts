import type { CacheHealth } from '../callbacks/cache-setup.js';
import type { Metrics } from '../metrics/metrics.js';

/** A route of the side HTTP port (`startHttpPort`'s `extraRoutes`). */
export type SideRoute = () => Promise<{ type: string; body: string }>;

/**
 * The routes this module adds to `--metrics-listen`: `/metrics` (Prometheus text) and `/status` (JSON
 * `{"status": "ok"|"degraded", "redis": "disabled"|"starting"|"up"|"down"}`). `/healthz` stays a plain
 * 200 while Redis is down on purpose: a degraded replica still answers every request correctly, and
 * failing its probe would take capacity away exactly when the endpoints see more calls.
 */
export function metricsRoutes(metrics: Metrics, health: () => CacheHealth): Record<string, SideRoute> {
  return {
    '/metrics': () => metrics.exposition(),
    '/status': async () => ({ type: 'application/json', body: `${JSON.stringify(health())}\n` }),
  };
}
