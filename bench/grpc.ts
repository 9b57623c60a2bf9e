/**
 * Benchmark of ext_proc round trips over loopback gRPC, with an Envoy-like client built from Envoy's
 * protos: one stream per request (as Envoy opens), a fixed number in flight.
 */
import { join } from 'node:path';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createLogger } from '../src/log.js';
import { startService } from '../src/runtime/service.js';
import { exchange, extProcClient, requestHeaders } from '../test/helpers/extproc-client.js';
import { fmt, percentile, table } from './stats.js';

const CONFIG = `
rules:
  - name: github-api
    match_hosts: ["api.github.com"]
    match_paths: ["/repos/*", "/user"]
    headers: [{ name: Authorization, type: plaintext, value: "Bearer bench" }]
  - name: wildcard
    match_hosts: ["*.example.com"]
    headers: [{ name: X-Api-Key, type: plaintext, value: "bench" }]
`;

async function roundTrips(address: string, total: number, inFlight: number) {
  const client = extProcClient(address);
  await exchange(client, [requestHeaders('api.github.com', '/user')]);
  const latencies: number[] = [];
  let next = 0;
  const start = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (next < total) {
        const k = next++;
        const t0 = process.hrtime.bigint();
        await exchange(client, [requestHeaders(k % 2 ? 'api.github.com' : 'a.example.com', '/repos/x/y')]);
        latencies.push(Number(process.hrtime.bigint() - t0));
      }
    }),
  );
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  client.close();
  latencies.sort((a, b) => a - b);
  return { rps: total / seconds, p50: percentile(latencies, 50), p99: percentile(latencies, 99) };
}

export async function runGrpcBench(): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'authproxy-bench-'));
  const config = join(dir, 'config.yaml');
  writeFileSync(config, CONFIG);
  const log = createLogger('silent');
  const rows: Array<Array<string | number>> = [];
  for (const [label, listen] of [['tcp 127.0.0.1', '127.0.0.1:0'], ['unix socket', `unix:${join(dir, 'b.sock')}`]] as const) {
    const service = await startService({ config, listen, sandboxId: 'bench' }, log);
    for (const inFlight of [1, 32]) {
      const r = await roundTrips(service.address, inFlight === 1 ? 3_000 : 20_000, inFlight);
      rows.push([label, inFlight, fmt(r.rps), fmt(r.p50 / 1e6, 3), fmt(r.p99 / 1e6, 3)]);
    }
    await service.close();
  }
  rmSync(dir, { recursive: true, force: true });
  return table('ext_proc round trips over loopback gRPC (client and server share the 2 cores)', ['transport', 'in flight', 'round trips/s', 'p50 ms', 'p99 ms'], rows);
}
