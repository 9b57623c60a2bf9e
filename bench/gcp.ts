/**
 * What a `type: gcp` rule costs per request, through Engine.handle: a warm token (cache hit, answered
 * synchronously) against a static header rule as the baseline, and a cache miss that mints a token with
 * google-auth-library from a fake Google token endpoint on loopback (RS256 assertion, TLS on a keep-alive
 * connection, the endpoint verifying the signature), with the RS256 signing alone for scale. Sequential
 * calls, interleaved rounds, best round per row.
 */
import { sign } from 'node:crypto';
import { MemoryCredentialCache } from '../src/callbacks/cache.js';
import { CallbackResolver } from '../src/callbacks/resolver.js';
import { CallbackSigner } from '../src/callbacks/signer.js';
import { GcpTokenHandler } from '../src/cloud/gcp/handler.js';
import { googleTokenMinter } from '../src/cloud/gcp/token-minter.js';
import { TemporaryCredentials } from '../src/cloud/shared/temporary-credentials.js';
import { compilePolicy } from '../src/config/compile.js';
import { validateConfig } from '../src/config/load.js';
import { createLogger } from '../src/log.js';
import type { PolicyRequest } from '../src/policy/decide.js';
import { Engine, type Outcome } from '../src/engine/engine.js';
import { tempDir } from '../test/helpers/fs.js';
import { makeServiceAccount, startGcpFake } from '../test/helpers/gcp-fake.js';
import { bestOfRounds, expectContinue, fmt, table } from './stats.js';

const SCOPES = ['https://www.googleapis.com/auth/cloud-platform'];

/** Runs the comparison and returns the printed table. */
export async function runGcpBench(): Promise<string> {
  const dir = tempDir('authproxy-bench-gcp-');
  const fake = await startGcpFake(dir.path);
  try {
    const account = makeServiceAccount(fake.url);
    fake.accept(account, SCOPES);
    const config = validateConfig(
      {
        rules: [
          {
            name: 'static',
            match_hosts: ['api.example.com'],
            headers: [{ name: 'Authorization', type: 'workspace_secret', value: 'Bearer {TOKEN}' }],
          },
          {
            name: 'gcp',
            type: 'gcp',
            gcp: { service_account_json: { type: 'workspace_secret', value: '{SA}' }, scopes: SCOPES },
          },
        ],
      },
      'bench',
    );
    const policy = compilePolicy(config, {
      secrets: new Map([
        ['TOKEN', 'bench'],
        ['SA', account.json],
      ]),
      unsealer: undefined,
      gcpTokenUriAllow: [new URL(fake.url).origin],
    });
    const log = createLogger('silent');
    const minter = googleTokenMinter({ timeoutMs: 10_000, agent: fake.agent() });
    const signer = await CallbackSigner.ephemeral();
    const engineWith = (handler: GcpTokenHandler) =>
      new Engine({ policyFor: () => policy }, new CallbackResolver(new MemoryCredentialCache(), signer), log, {
        cloud: { gcp: handler },
      });
    const fresh = () => new GcpTokenHandler(new TemporaryCredentials(new MemoryCredentialCache()), minter, { log });
    const warm = engineWith(fresh());
    const req = (authority: string): PolicyRequest => ({
      method: 'GET',
      scheme: 'https',
      authority,
      path: '/storage/v1/b?project=p',
    });
    await warm.handle(req('storage.googleapis.com'), 'sb');
    const before = fake.calls.length;
    // A miss: an empty token cache per call, so every request mints (the agent's connection stays open).
    const miss = () => engineWith(fresh()).handle(req('storage.googleapis.com'), 'sb');
    const hitPaths: Array<[string, () => Outcome | Promise<Outcome>]> = [
      ['static header rule (baseline)', () => warm.handle(req('api.example.com'), 'sb')],
      ['gcp token cache hit', () => warm.handle(req('storage.googleapis.com'), 'sb')],
    ];
    const hits = await bestOfRounds(
      hitPaths.map(([, fn]) => expectContinue(fn)),
      2000,
      5,
    );
    const [misses] = await bestOfRounds([expectContinue(miss)], 40, 3);
    const minted = fake.calls.length - before;
    const payload = Buffer.from(
      JSON.stringify({ iss: account.clientEmail, scope: SCOPES.join(' '), aud: fake.url, iat: 1, exp: 3601 }),
    );
    const [signing] = await bestOfRounds([() => sign('RSA-SHA256', payload, account.privateKey)], 40, 3);
    const rows = [
      ...hitPaths.map(([label], i) => [label, fmt(hits[i]!.p50 / 1000, 2), fmt(hits[i]!.p99 / 1000, 2)]),
      [
        `gcp token cache miss: mint at the fake endpoint (${fmt(minted)} mints)`,
        fmt(misses!.p50 / 1000, 0),
        fmt(misses!.p99 / 1000, 0),
      ],
      [
        '  of which: RS256 assertion signing alone (RSA-2048)',
        fmt(signing!.p50 / 1000, 0),
        fmt(signing!.p99 / 1000, 0),
      ],
    ];
    return table(
      'Google Cloud tokens: Engine.handle per request (hits: 2000 sequential calls, misses: 40; best of interleaved rounds)',
      ['path', 'p50 µs', 'p99 µs'],
      rows,
    );
  } finally {
    await fake.close();
    dir.cleanup();
  }
}
