/**
 * What re-signing AWS requests costs per request, through Engine.handle (decision + SigV4 with
 * @smithy/signature-v4): a static rule as the baseline (headers only, x-amz-content-sha256 given), bodies
 * authproxy hashes (4 KiB, 1 MiB), and role credentials on a cache hit vs a miss (a stand-in STS answering
 * at once, so the miss is authproxy's own cost: cache, mint bookkeeping, signing; a real AssumeRole adds its
 * network round trip, tens of ms, once per sandbox per hour). Sequential calls, best of interleaved rounds.
 */
import { MemoryCredentialCache } from '../src/callbacks/cache.js';
import { CallbackResolver } from '../src/callbacks/resolver.js';
import { CallbackSigner } from '../src/callbacks/signer.js';
import { AwsSigner } from '../src/cloud/aws/handler.js';
import { AwsRoleCredentials, type RoleAssumer } from '../src/cloud/aws/role-credentials.js';
import { TemporaryCredentials } from '../src/cloud/shared/temporary-credentials.js';
import { compilePolicy } from '../src/config/compile.js';
import { validateConfig } from '../src/config/load.js';
import { createLogger } from '../src/log.js';
import type { PolicyRequest } from '../src/policy/decide.js';
import { Engine, type Outcome, type RequestExtras } from '../src/engine/engine.js';
import { bestOfRounds, expectContinue, fmt, table } from './stats.js';

const CALLS = 500;
const ROUNDS = 5;
const SIGNED = (signed: string) =>
  `AWS4-HMAC-SHA256 Credential=AKIAAUTHPROXYEXAMPLE/20250101/us-east-1/dynamodb/aws4_request, SignedHeaders=${signed}, Signature=${'a'.repeat(64)}`;

async function engineFor(aws: Record<string, unknown>, roles?: AwsRoleCredentials): Promise<Engine> {
  const secrets = new Map([
    ['KEY_ID', 'AKIAREALKEY000000001'],
    ['SECRET', 'bench/secret/bench/secret/bench/secret00'],
  ]);
  const policy = compilePolicy(validateConfig({ rules: [{ name: 'aws', type: 'aws', aws }] }, 'bench'), {
    secrets,
    unsealer: undefined,
  });
  const log = createLogger('silent');
  return new Engine(
    { policyFor: () => policy },
    new CallbackResolver(new MemoryCredentialCache(), await CallbackSigner.ephemeral()),
    log,
    { cloud: { aws: new AwsSigner({ log, roles }) } },
  );
}

/** Runs the comparison and returns the printed table. */
export async function runAwsBench(): Promise<string> {
  const staticEngine = await engineFor({
    access_key_id: { type: 'workspace_secret', value: '{KEY_ID}' },
    secret_access_key: { type: 'workspace_secret', value: '{SECRET}' },
  });
  const now = () => Date.now();
  const sts: RoleAssumer = {
    assume: async () => ({
      accessKeyId: 'ASIABENCH',
      secretAccessKey: 'bench-session-secret',
      sessionToken: 'bench-session-token',
      expiresAt: now() + 3600_000,
    }),
  };
  const roles = new AwsRoleCredentials(new TemporaryCredentials(new MemoryCredentialCache(1_000_000)), sts);
  const roleEngine = await engineFor(
    { role_arn: 'arn:aws:iam::123456789012:role/bench', session_tags: { team: 'bench' } },
    roles,
  );
  const req = (method: string): PolicyRequest => ({
    method,
    scheme: 'https',
    authority: 'dynamodb.us-east-1.amazonaws.com',
    path: '/',
  });
  const common = {
    'content-type': ['application/x-amz-json-1.0'],
    'x-amz-target': ['DynamoDB_20120810.PutItem'],
    'x-amz-date': ['20250101T000000Z'],
    'content-length': ['4096'],
  };
  const withHash: RequestExtras = {
    endOfStream: false,
    headers: () => ({
      ...common,
      authorization: [SIGNED('content-length;content-type;host;x-amz-content-sha256;x-amz-date;x-amz-target')],
      'x-amz-content-sha256': ['e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855'],
    }),
  };
  const noHash: RequestExtras = {
    endOfStream: false,
    headers: () => ({ ...common, authorization: [SIGNED('content-length;content-type;host;x-amz-date;x-amz-target')] }),
  };
  const hashed = (bytes: number) => {
    const body = Buffer.alloc(bytes, 0x61);
    return async () => {
      const held = staticEngine.handle(req('POST'), 'sb', noHash);
      if (held instanceof Promise || held.kind !== 'awaitBody')
        throw new Error('bench: expected the body to be asked for');
      return held.resume(body, true);
    };
  };
  let miss = 0;
  const paths: Array<[string, () => Outcome | Promise<Outcome>]> = [
    ['static keys, x-amz-content-sha256 given (headers only)', () => staticEngine.handle(req('POST'), 'sb', withHash)],
    ['static keys, 4 KiB body hashed', hashed(4 * 1024)],
    ['static keys, 1 MiB body hashed', hashed(1024 * 1024)],
    ['role, session cached (hit)', () => roleEngine.handle(req('POST'), 'sb-warm', withHash)],
    ['role, session minted (miss, STS stand-in)', () => roleEngine.handle(req('POST'), `sb-${miss++}`, withHash)],
  ];
  await roleEngine.handle(req('POST'), 'sb-warm', withHash);
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
    i === 0 ? '-' : `${best[i]!.p50 >= base ? '+' : ''}${fmt((best[i]!.p50 - base) / 1000, 1)}`,
  ]);
  return table(
    `AWS re-signing: Engine.handle per request, SigV4 with @smithy/signature-v4 (${CALLS} sequential calls, best of ${ROUNDS} rounds)`,
    ['path', 'p50 µs', 'p99 µs', 'vs headers-only p50 µs'],
    rows,
  );
}
