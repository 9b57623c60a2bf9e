/**
 * Diagnostics for the soak and chaos runs: a richer Envoy access-log line (response flags, upstream
 * failure reason, start time, duration), the lines of failed requests picked out of Envoy's output, and
 * the non-zero ext_proc / authproxy-cluster / upstream-failure statistics from its admin port.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/** Adds response flags, the upstream transport failure reason, the start time and the duration to the rig's access-log lines. */
export function detailedAccessLog(yaml: string): string {
  return yaml.replaceAll(
    '%RESPONSE_CODE_DETAILS%',
    '%RESPONSE_CODE_DETAILS% flags=%RESPONSE_FLAGS% fail=%UPSTREAM_TRANSPORT_FAILURE_REASON% start=%START_TIME(%s.%3f)% dur=%DURATION%ms',
  );
}

/** Access-log lines (`[outer]`/`[inner]`) whose response code is not 200, and Envoy's own warnings and errors; at most `max`. */
export function failedAccessLines(envoyOutput: string, max = 50): string[] {
  const out: string[] = [];
  for (const line of envoyOutput.split('\n')) {
    const failedRequest = /^\[(outer|inner)\]/.test(line) && !/ -> 200 /.test(line);
    if (!failedRequest && !/\]\[(warning|error|critical)\]/.test(line)) continue;
    out.push(line);
    if (out.length >= max) break;
  }
  return out;
}

/** The Envoy admin port of a rig (from the envoy.yaml it wrote in `dir`). */
export function adminPortOf(dir: string): number {
  const m = /admin:[\s\S]*?port_value:\s*(\d+)/.exec(readFileSync(join(dir, 'envoy.yaml'), 'utf8'));
  if (!m) throw new Error('no admin port in envoy.yaml');
  return Number(m[1]);
}

/** Non-zero counters about ext_proc, the authproxy cluster and upstream failures, as `name: value` lines. */
export async function failureStats(adminPort: number): Promise<string[]> {
  const filter =
    '(ext_proc|cluster\\.authproxy.*\\.(upstream_cx_connect_fail|upstream_rq_(5xx|503|reset|timeout|pending_failure_eject)|upstream_cx_destroy_remote_with_active_rq|health_check\\.failure|outlier_detection\\.ejections_total)|cluster\\.dfp_.*\\.(upstream_cx_connect_fail|upstream_rq_5xx|upstream_rq_retry|upstream_cx_destroy_remote_with_active_rq|upstream_rq_pending_failure_eject)|downstream_rq_5xx|rq_reset_after_downstream_response_started|sds\\.|on_demand)';
  const text = await (await fetch(`http://127.0.0.1:${adminPort}/stats?filter=${encodeURIComponent(filter)}`)).text();
  return text
    .split('\n')
    .filter(
      (l) =>
        /: [1-9]\d*$/.test(l.trim()) &&
        !/(expiration_unix_time_seconds|update_time|\.version|connected_state):/.test(l),
    );
}
