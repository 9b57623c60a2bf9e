/**
 * One waiter's subscription to the notices of one key. `arm` before asking Redis, `wait` after: a notice
 * that arrives in between (pub/sub and commands use different connections, so their order is not
 * guaranteed) is not lost, `wait` then returns at once.
 */
export interface NoticeTicket {
  arm(): void;
  wait(ms: number): Promise<void>;
  close(): void;
}

interface TicketState {
  fired: boolean;
  wake: (() => void) | undefined;
}

/**
 * Dispatches the "attempt finished" notices that replicas publish (one Redis channel for the whole
 * fleet, message = the key's hashed name) to the local waiters of that key. Waiters also poll with a
 * short backoff, so a lost notice (pub/sub connection down) costs latency, never correctness.
 */
export class FleetNotices {
  private readonly tickets = new Map<string, Set<TicketState>>();

  /** Called for every message on the channel. */
  deliver(name: string): void {
    const set = this.tickets.get(name);
    if (!set) return;
    for (const t of set) {
      t.fired = true;
      t.wake?.();
    }
  }

  open(name: string): NoticeTicket {
    const state: TicketState = { fired: false, wake: undefined };
    let set = this.tickets.get(name);
    if (!set) this.tickets.set(name, (set = new Set()));
    set.add(state);
    return {
      arm: () => {
        state.fired = false;
      },
      wait: (ms) =>
        state.fired
          ? Promise.resolve()
          : new Promise<void>((resolve) => {
              const timer = setTimeout(done, ms);
              function done() {
                clearTimeout(timer);
                state.wake = undefined;
                resolve();
              }
              state.wake = done;
            }),
      close: () => {
        set.delete(state);
        if (set.size === 0 && this.tickets.get(name) === set) this.tickets.delete(name);
        state.wake?.();
      },
    };
  }
}
