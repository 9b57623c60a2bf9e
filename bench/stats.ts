/** Small helpers shared by the benchmarks: percentiles, the load loops; `fmt` and `table` are test/helpers/table.ts. */
import type { Outcome } from '../src/engine/engine.js';
import { fmt } from '../test/helpers/table.js';

export { fmt, table } from '../test/helpers/table.js';

export function percentile(sortedNs: Float64Array | number[], p: number): number {
  const i = Math.min(sortedNs.length - 1, Math.floor((p / 100) * sortedNs.length));
  return sortedNs[i]!;
}

/** Calls `one` `total` times, `inFlight` at a time, after `warmup` calls: the loop every load benchmark shares. */
export async function loadTest(
  one: () => Promise<void>,
  total: number,
  inFlight: number,
  warmup = 200,
): Promise<{ rps: number; p50: number; p99: number }> {
  for (let i = 0; i < warmup; i++) await one();
  const latencies: number[] = [];
  let next = 0;
  const start = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (next++ < total) {
        const t0 = process.hrtime.bigint();
        await one();
        latencies.push(Number(process.hrtime.bigint() - t0) / 1e6);
      }
    }),
  );
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  latencies.sort((a, b) => a - b);
  return { rps: total / seconds, p50: percentile(latencies, 50), p99: percentile(latencies, 99) };
}

/**
 * Times each path `calls` times in a row, in `rounds` interleaved rounds, and keeps each path's best round
 * (p50 and p99, ns): the cost of one sequential call, with other work on the machine filtered out.
 */
export async function bestOfRounds(
  paths: ReadonlyArray<() => unknown>,
  calls: number,
  rounds: number,
): Promise<Array<{ p50: number; p99: number }>> {
  const best = paths.map(() => ({ p50: Infinity, p99: Infinity }));
  for (let round = 0; round < rounds; round++) {
    for (const [i, fn] of paths.entries()) {
      const samples = new Float64Array(calls);
      for (let c = 0; c < calls; c++) {
        const t0 = process.hrtime.bigint();
        await fn();
        samples[c] = Number(process.hrtime.bigint() - t0);
      }
      samples.sort();
      best[i]!.p50 = Math.min(best[i]!.p50, percentile(samples, 50));
      best[i]!.p99 = Math.min(best[i]!.p99, percentile(samples, 99));
    }
  }
  return best;
}

/** Wraps one path of an Engine benchmark so that anything but a `continue` outcome stops the run. */
export const expectContinue = (fn: () => Outcome | Promise<Outcome>) => async (): Promise<void> => {
  const out = await fn();
  if (out.kind !== 'continue') throw new Error(`bench: unexpected outcome ${out.kind}`);
};

/** `x.xx×` (a / b), or '' when there is nothing to compare with. */
export const ratio = (a: number, b: number | undefined): string => (b ? `${fmt(a / b, 2)}×` : '');
