/**
 * One chaos step: a load runs, a fault is injected and lifted, and the step's expectations are checked
 * against the timestamped results (wrong credentials, refusals, recovery time). Rows accumulate for the
 * table printed at the end.
 */
import { summarise, type LoadResult } from './load.js';
import { fmt, table } from '../helpers/table.js';
import { sleep } from './common.js';

/** A load a step drives: ChaosLoad, or a step's own. */
export interface Load {
  readonly results: LoadResult[];
  start(): void;
  stop(): Promise<void>;
}

/** What a step must show. */
export interface Expect {
  /** Refusals allowed (non-2xx) over the whole step; undefined = any. */
  readonly maxRefused?: number;
  /** At least one refusal expected (the fault must be visible: fail closed). */
  readonly mustRefuse?: boolean;
  readonly recoverWithinMs: number;
  /**
   * How recovery is timed from the end of the fault: `first-ok` (default) until the first good answer, for
   * faults that are lifted; `last-refusal` until the last refusal, for a fault that stays (a replica killed).
   */
  readonly recovery?: 'first-ok' | 'last-refusal';
  /** How long the load keeps running after recovery (default 3 s). */
  readonly observeMs?: number;
}

/** One line of the chaos table. */
export interface Row {
  step: string;
  requests: number;
  ok: number;
  refused: number;
  bad: number;
  recoverMs: number;
  statuses: Record<string, number>;
  pass: boolean;
  why: string[];
}

/** The rows of the steps run so far. */
export const rows: Row[] = [];

/**
 * Runs one step: starts `load`, waits 2 s, runs `fault` (which returns when the fault is lifted), waits
 * for recovery and `observeMs`, then checks `expect` and `check` (extra reasons to fail) and records a row.
 */
export async function step(
  name: string,
  load: Load,
  expect: Expect,
  fault: () => Promise<void>,
  check?: (results: readonly LoadResult[], faultEnd: number) => string[],
): Promise<Row> {
  const t0 = Date.now();
  console.log(`-- ${name}`);
  const why: string[] = [];
  load.start();
  let faultEnd = Date.now();
  let faultStart = faultEnd;
  try {
    await sleep(2000);
    faultStart = Date.now();
    await fault();
    faultEnd = Date.now();
    const deadline = faultEnd + Math.max(expect.recoverWithinMs, 5000) + 5000;
    while (Date.now() < deadline && !load.results.some((r) => r.sentAt >= faultEnd && r.status === 200 && !r.bad))
      await sleep(100);
    await sleep(expect.observeMs ?? 3000);
  } catch (err) {
    why.push(`step error: ${(err as Error).message.slice(0, 200)}`);
  } finally {
    await load.stop();
  }
  const s = summarise(load.results, faultEnd);
  let recoverMs = s.recoverMs;
  let refusedAfterRecovery = s.refusedAfterRecovery;
  if (expect.recovery === 'last-refusal') {
    const refusedAfter = load.results.filter((r) => r.doneAt >= faultStart && r.status !== 200);
    recoverMs = refusedAfter.length ? Math.max(...refusedAfter.map((r) => r.doneAt)) - faultStart : 0;
    refusedAfterRecovery = 0;
  }
  if (s.bad !== 0) why.push(`${s.bad} wrong credential`);
  if (expect.maxRefused !== undefined && s.refused > expect.maxRefused)
    why.push(`${s.refused} refused > ${expect.maxRefused}`);
  if (expect.mustRefuse && s.refused === 0) why.push('fault not visible (0 refused)');
  if (!(recoverMs <= expect.recoverWithinMs))
    why.push(`recovery ${Number.isNaN(recoverMs) ? 'never' : `${recoverMs} ms`} > ${expect.recoverWithinMs} ms`);
  if (refusedAfterRecovery > 0) why.push(`${refusedAfterRecovery} refused > 1 s after recovery`);
  why.push(...(check?.(load.results, faultEnd) ?? []));
  const row = {
    step: name,
    requests: s.requests,
    ok: s.ok,
    refused: s.refused,
    bad: s.bad,
    recoverMs,
    statuses: s.statuses,
    pass: why.length === 0,
    why,
  };
  rows.push(row);
  console.log(
    `   ${row.pass ? 'PASS' : 'FAIL'} requests=${s.requests} ok=${s.ok} refused=${s.refused} ${JSON.stringify(s.statuses)} wrong=${s.bad} recover=${recoverMs} ms (${((Date.now() - t0) / 1000).toFixed(1)} s) ${why.join('; ')}`,
  );
  return row;
}

/** The table of all rows, as the chaos run prints it. */
export function chaosTable(): string {
  return table(
    'Chaos under load',
    ['step', 'requests', 'ok', 'refused', 'wrong credential', 'recover ms', 'result'],
    rows.map((r) => [
      r.step,
      fmt(r.requests),
      fmt(r.ok),
      `${fmt(r.refused)} ${Object.keys(r.statuses).length ? JSON.stringify(r.statuses) : ''}`,
      r.bad,
      Number.isNaN(r.recoverMs) ? 'never' : fmt(r.recoverMs),
      r.pass ? 'pass' : `FAIL: ${r.why.join('; ')}`,
    ]),
  );
}
