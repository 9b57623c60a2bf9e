/**
 * Time as the SDS side sees it: a reading and one-shot timers. Leaf renewal is planned in hours, so
 * tests can't wait for it; they pass a manual clock that moves (and fires its timers) on demand, while
 * production uses `systemClock`.
 */
export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
  /** Calls `fn` once after `ms`; returns a function that cancels it. */
  setTimer(fn: () => void, ms: number): () => void;
}

/** Longest delay Node's setTimeout honours; a longer one would fire at once. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * The real clock. Timers are unref'd (a pending renewal never keeps the process alive) and capped at
 * ~24.8 days; a capped timer fires early, and the renewal it drives finds nothing due and re-plans.
 */
export const systemClock: Clock = {
  now: () => Date.now(),
  setTimer(fn, ms) {
    const timer = setTimeout(fn, Math.min(Math.max(ms, 0), MAX_TIMER_MS));
    timer.unref();
    return () => clearTimeout(timer);
  },
};
