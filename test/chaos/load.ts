/**
 * Chaos load: an open-loop fixed-rate request stream through the sidecar (one undici ProxyAgent per host,
 * as in test/soak/runner.ts), each result timestamped so a chaos step can count refusals, wrong credentials and
 * the time from the end of a fault to the first good answer.
 */
import { readFileSync } from 'node:fs';
import { ProxyAgent, request } from 'undici';
import type { Rig } from '../helpers/sidecar-rig.js';

export interface LoadResult {
  readonly sentAt: number;
  readonly doneAt: number;
  readonly status: number; // 0 = transport error
  /** 200 but the upstream saw no credential, or one not in the allowed set. */
  readonly bad: boolean;
  readonly host: string;
  readonly auth?: string;
}

export interface LoadTarget {
  readonly host: string;
  /** Credentials the upstream may see for this host right now (checked when the answer arrives). */
  allowed(): readonly string[];
  readonly weight: number;
}

export class ChaosLoad {
  readonly results: LoadResult[] = [];
  private readonly agents = new Map<string, ProxyAgent>();
  private stopped = false;
  private loop?: Promise<void>;
  private readonly inflight = new Set<Promise<void>>();

  constructor(
    private readonly rig: Rig,
    private readonly targets: LoadTarget[],
    private readonly rate: number,
  ) {
    const ca = readFileSync(rig.authproxyCa, 'utf8');
    for (const t of targets)
      this.agents.set(t.host, new ProxyAgent({ uri: rig.proxyUrl, requestTls: { ca }, connections: 16 }));
  }

  start(): void {
    const wheel: LoadTarget[] = this.targets.flatMap((t) => Array.from({ length: t.weight }, () => t));
    this.loop = (async () => {
      const start = performance.now();
      let sent = 0;
      while (!this.stopped) {
        const due = Math.floor(((performance.now() - start) / 1000) * this.rate);
        while (sent < due) {
          const p = this.one(wheel[sent % wheel.length]!, sent).finally(() => this.inflight.delete(p));
          this.inflight.add(p);
          sent++;
        }
        await new Promise((r) => setTimeout(r, 5));
      }
    })();
  }

  private async one(t: LoadTarget, i: number): Promise<void> {
    const sentAt = Date.now();
    try {
      const res = await request(this.rig.url(t.host, `/chaos/${i}`), {
        dispatcher: this.agents.get(t.host)!,
        headersTimeout: 15_000,
        bodyTimeout: 15_000,
      });
      const body = await res.body.text();
      if (res.statusCode !== 200) {
        this.results.push({ sentAt, doneAt: Date.now(), status: res.statusCode, bad: false, host: t.host });
        return;
      }
      let auth: string | undefined;
      try {
        auth = (JSON.parse(body) as { headers: Record<string, string> }).headers.authorization;
      } catch {
        auth = undefined;
      }
      const bad = auth === undefined || !t.allowed().includes(auth);
      this.results.push({ sentAt, doneAt: Date.now(), status: 200, bad, host: t.host, auth });
    } catch {
      this.results.push({ sentAt, doneAt: Date.now(), status: 0, bad: false, host: t.host });
    }
  }

  /** Stops sending, waits for what is in flight and closes the agents. */
  async stop(): Promise<void> {
    this.stopped = true;
    await this.loop;
    await Promise.all(this.inflight);
    await Promise.all([...this.agents.values()].map((a) => a.close()));
  }
}

/** Counts of a step's results; `faultEnd` (ms epoch) is when the fault was lifted. */
export function summarise(results: readonly LoadResult[], faultEnd: number) {
  const ok = results.filter((r) => r.status === 200 && !r.bad).length;
  const refused = results.filter((r) => r.status !== 200).length;
  const bad = results.filter((r) => r.bad).length;
  // Recovery: the first good answer to a request sent after the fault ended, from then on everything ok.
  const after = results.filter((r) => r.sentAt >= faultEnd).sort((a, b) => a.sentAt - b.sentAt);
  let firstOk: LoadResult | undefined;
  for (const r of after)
    if (r.status === 200 && !r.bad) {
      firstOk = r;
      break;
    }
  const recoverMs = firstOk ? Math.max(0, firstOk.doneAt - faultEnd) : NaN;
  const refusedAfterRecovery = firstOk
    ? after.filter((r) => r.sentAt > firstOk.doneAt + 1000 && r.status !== 200).length
    : NaN;
  const statuses: Record<string, number> = {};
  for (const r of results)
    if (r.status !== 200) statuses[String(r.status || 'conn')] = (statuses[String(r.status || 'conn')] ?? 0) + 1;
  return { requests: results.length, ok, refused, bad, recoverMs, refusedAfterRecovery, statuses };
}
