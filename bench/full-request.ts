/**
 * What a `full_request` callback adds per request, through Engine.handle against a real HTTP endpoint on
 * loopback that answers at once: a warm (cached) callback as the baseline, a full_request GET decided from
 * its headers, and a full_request POST with a 64 KiB / 1 MiB body (snapshot built, base64'd, signed, sent).
 * Sequential calls, interleaved rounds, best round per row: the figure is the cost of one call, not of load.
 */
import { MemoryCredentialCache } from '../src/callbacks/cache.js';
import { CallbackResolver } from '../src/callbacks/resolver.js';
import { CallbackSigner } from '../src/callbacks/signer.js';
import { compilePolicy } from '../src/config/compile.js';
import { validateConfig } from '../src/config/load.js';
import { createLogger } from '../src/log.js';
import type { PolicyRequest } from '../src/policy/decide.js';
import { Engine, type Outcome, type RequestExtras } from '../src/engine/engine.js';
import { answer, startCallbackServer } from '../test/helpers/callback-server.js';
import { bestOfRounds, expectContinue, fmt, table } from './stats.js';

const CALLS = 300;
const ROUNDS = 5;

/** Runs the comparison and returns the printed table. */
export async function runFullRequestBench(): Promise<string> {
  const endpoint = await startCallbackServer(answer({ Authorization: 'Bearer bench' }));
  try {
    const config = validateConfig(
      {
        callbacks: [
          { match_hosts: ['api.cached.example'], url: endpoint.url, ttl_seconds: 3600 },
          { match_hosts: ['api.full.example'], url: endpoint.url, ttl_seconds: 60, full_request: true },
        ],
      },
      'bench',
    );
    const policy = compilePolicy(config, { secrets: new Map(), unsealer: undefined });
    const engine = new Engine(
      { policyFor: () => policy },
      new CallbackResolver(new MemoryCredentialCache(), await CallbackSigner.ephemeral()),
      createLogger('silent'),
    );
    const req = (authority: string, method: string): PolicyRequest => ({
      method,
      scheme: 'https',
      authority,
      path: '/v1/responses?x=1',
    });
    const headers = { 'content-type': ['application/json'], 'user-agent': ['bench/1'], accept: ['*/*'] };
    const extras = (endOfStream: boolean): RequestExtras => ({ endOfStream, headers: () => headers });
    const withBody = (bytes: number) => {
      const body = Buffer.alloc(bytes, 0x61);
      return async () => {
        const held = engine.handle(req('api.full.example', 'POST'), 'sb', extras(false));
        if (held instanceof Promise || held.kind !== 'awaitBody')
          throw new Error('bench: expected the body to be asked for');
        return held.resume(body, true);
      };
    };
    const paths: Array<[string, () => Outcome | Promise<Outcome>]> = [
      ['warm callback (cached, baseline)', () => engine.handle(req('api.cached.example', 'GET'), 'sb', extras(true))],
      ['full_request GET, no body', () => engine.handle(req('api.full.example', 'GET'), 'sb', extras(true))],
      ['full_request POST, 64 KiB body', withBody(64 * 1024)],
      ['full_request POST, 1 MiB body', withBody(1024 * 1024)],
    ];
    await engine.handle(req('api.cached.example', 'GET'), 'sb', extras(true));
    const best = await bestOfRounds(
      paths.map(([, fn]) => expectContinue(fn)),
      CALLS,
      ROUNDS,
    );
    const base = best[0]!.p50;
    const rows = paths.map(([label], i) => [
      label,
      fmt(best[i]!.p50 / 1000, 1),
      fmt(best[i]!.p99 / 1000, 1),
      i === 0 ? '-' : `+${fmt((best[i]!.p50 - base) / 1000, 1)}`,
    ]);
    return table(
      `full_request callbacks: Engine.handle per request, endpoint on loopback answering at once (${CALLS} sequential calls, best of ${ROUNDS} rounds)`,
      ['path', 'p50 µs', 'p99 µs', 'added p50 µs'],
      rows,
    );
  } finally {
    await endpoint.close();
  }
}
