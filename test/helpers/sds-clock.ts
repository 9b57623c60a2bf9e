/** A clock that moves only when a test says so, firing the timers that fall due (leaf renewal is planned in hours). */
import type { Clock } from '../../src/sds/clock.js';

export class ManualClock implements Clock {
  private current: number;
  private timers: Array<{ at: number; fn: () => void }> = [];

  constructor(start = Date.now()) {
    this.current = start;
  }

  now(): number {
    return this.current;
  }

  setTimer(fn: () => void, ms: number): () => void {
    const timer = { at: this.current + Math.max(ms, 0), fn };
    this.timers.push(timer);
    return () => {
      this.timers = this.timers.filter((t) => t !== timer);
    };
  }

  /** Moves time forward and fires every timer now due, earliest first. */
  advance(ms: number): void {
    this.current += ms;
    for (;;) {
      const due = this.timers.filter((t) => t.at <= this.current).sort((a, b) => a.at - b.at)[0];
      if (!due) return;
      this.timers = this.timers.filter((t) => t !== due);
      due.fn();
    }
  }

  /** Timers not fired or cancelled yet. */
  get pending(): number {
    return this.timers.length;
  }
}
