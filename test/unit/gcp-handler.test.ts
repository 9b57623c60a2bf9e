/**
 * The `type: gcp` handler without Envoy or a network, on a fake clock: a token is minted once, answered
 * synchronously from the cache until 5 minutes before it expires, minted again after; concurrent misses
 * make one mint; failures are 502 naming Google Cloud token minting and are never cached; the Engine
 * routes Google API hosts (and nothing under google.com) to the handler.
 */
import { describe, expect, it } from 'vitest';
import { MemoryCredentialCache } from '../../src/callbacks/cache.js';
import type { CallbackResolver } from '../../src/callbacks/resolver.js';
import { GCP_TOKEN_FAILED, GcpTokenHandler, type GcpDecision } from '../../src/cloud/gcp/handler.js';
import { GcpTokenFailure, type AccessToken, type TokenMinter } from '../../src/cloud/gcp/token-minter.js';
import { TemporaryCredentials } from '../../src/cloud/shared/temporary-credentials.js';
import type { CompiledGcpRule, CompiledPolicy } from '../../src/policy/compiled.js';
import { decide, type PolicyRequest } from '../../src/policy/decide.js';
import { Engine, type Outcome } from '../../src/engine/engine.js';
import { makeServiceAccount } from '../helpers/gcp-fake.js';
import { captureLogs } from '../helpers/logs.js';
import { policyFrom } from './support.js';

const SCOPE = 'https://www.googleapis.com/auth/cloud-platform';
const account = makeServiceAccount('https://oauth2.googleapis.com/token');
const policyWith = (scopes: string[]) =>
  policyFrom(
    `rules:\n  - name: gcp\n    type: gcp\n    gcp:\n      service_account_json: { type: workspace_secret, value: "{SA}" }\n      scopes: ${JSON.stringify(scopes)}\n`,
    new Map([['SA', account.json]]),
  );
const POLICY = policyWith([SCOPE]);
const REQ: PolicyRequest = {
  method: 'GET',
  scheme: 'https',
  authority: 'storage.googleapis.com',
  path: '/storage/v1/b?project=p',
};
const decisionFor = (policy: CompiledPolicy, req = REQ) => decide(policy, req) as GcpDecision;

/** A minter that counts calls and answers tokens t1, t2, ... of `lifetime` seconds (or fails). */
function fakeMinter(lifetime = 3600) {
  const state = {
    calls: 0,
    lifetime,
    fail: undefined as Error | undefined,
    gate: undefined as Promise<void> | undefined,
    rules: [] as CompiledGcpRule[],
  };
  const minter: TokenMinter = {
    async mint(rule): Promise<AccessToken> {
      state.calls++;
      state.rules.push(rule);
      if (state.gate) await state.gate;
      if (state.fail) throw state.fail;
      return { accessToken: `ya29.t${state.calls}`, expiresInSeconds: state.lifetime };
    },
  };
  return { minter, state };
}

function setup(lifetime?: number) {
  let now = 1_700_000_000_000;
  const clock = () => now;
  const logs = captureLogs();
  const { minter, state } = fakeMinter(lifetime);
  const handler = new GcpTokenHandler(new TemporaryCredentials(new MemoryCredentialCache(100, clock)), minter, {
    log: logs.log,
    clock,
  });
  const ask = (policy = POLICY, sandbox = 'sb-1') => handler.handle(decisionFor(policy), REQ, undefined, sandbox);
  return { handler, state, logs, ask, advance: (ms: number) => void (now += ms) };
}

const bearer = (o: Outcome) => (o.kind === 'continue' ? o.set : undefined);

describe('GcpTokenHandler', () => {
  it('mints on the first request; sets Authorization (replacing the sandbox one) and removes Proxy-Authorization', async () => {
    const { ask, state } = setup();
    const first = ask();
    expect(first).toBeInstanceOf(Promise);
    expect(await first).toEqual({
      kind: 'continue',
      set: [['authorization', 'Bearer ya29.t1']],
      remove: ['proxy-authorization'],
    });
    expect(state.calls).toBe(1);
    expect(state.rules[0]).toMatchObject({
      clientEmail: account.clientEmail,
      tokenUri: 'https://oauth2.googleapis.com/token',
      scopes: [SCOPE],
    });
  });

  it('a cache hit is synchronous and allocation-free (the same Outcome), until 5 minutes before expiry', async () => {
    const { ask, state, advance } = setup(3600);
    const minted = await ask();
    const hit = ask();
    expect(hit).not.toBeInstanceOf(Promise);
    expect(hit).toBe(minted);
    advance((3600 - 300) * 1000 - 1);
    expect(ask()).toBe(minted);
    expect(state.calls).toBe(1);
    advance(1);
    const renewed = ask();
    expect(renewed).toBeInstanceOf(Promise);
    expect(bearer(await renewed)).toEqual([['authorization', 'Bearer ya29.t2']]);
    expect(state.calls).toBe(2);
    expect(ask()).not.toBeInstanceOf(Promise);
  });

  it('a token of a short lifetime (10 min) is used until 5 min before its expiry', async () => {
    const { ask, state, advance } = setup(600);
    await ask();
    advance(299_000);
    expect(ask()).not.toBeInstanceOf(Promise);
    advance(1_000);
    await ask();
    expect(state.calls).toBe(2);
  });

  it('a token that lives 5 minutes or less serves the request that minted it and is not cached', async () => {
    const { ask, state } = setup(300);
    expect(bearer(await ask())).toEqual([['authorization', 'Bearer ya29.t1']]);
    expect(bearer(await ask())).toEqual([['authorization', 'Bearer ya29.t2']]);
    expect(state.calls).toBe(2);
  });

  it('a lifetime over an hour is cached for at most an hour', async () => {
    const { ask, state, advance } = setup(12 * 3600);
    await ask();
    advance(3600_000 - 1);
    expect(ask()).not.toBeInstanceOf(Promise);
    advance(1);
    await ask();
    expect(state.calls).toBe(2);
  });

  it('concurrent misses make one mint; every sandbox with the same key and scopes shares the token', async () => {
    const { ask, state } = setup();
    let open!: () => void;
    state.gate = new Promise<void>((r) => (open = r));
    const waiting = [ask(POLICY, 'sb-1'), ask(POLICY, 'sb-2'), ask(POLICY, 'sb-3')];
    open();
    const out = await Promise.all(waiting);
    expect(state.calls).toBe(1);
    expect(new Set(out.map((o) => JSON.stringify(bearer(o))))).toEqual(
      new Set([JSON.stringify([['authorization', 'Bearer ya29.t1']])]),
    );
  });

  it('other scopes are another token', async () => {
    const { ask, state } = setup();
    await ask(POLICY);
    await ask(policyWith([SCOPE, 'https://www.googleapis.com/auth/devstorage.read_only']));
    expect(state.calls).toBe(2);
    expect(state.rules[1]!.scopes).toEqual([SCOPE, 'https://www.googleapis.com/auth/devstorage.read_only']);
  });

  it('a token endpoint error is a 502 naming Google Cloud token minting; nothing is cached', async () => {
    const { ask, state, logs } = setup();
    state.fail = new GcpTokenFailure('status', 'the token endpoint answered 400 (invalid_grant)');
    expect(await ask()).toEqual({
      kind: 'immediate',
      status: 502,
      body: 'Google Cloud token minting failed: the token endpoint answered 400 (invalid_grant)',
    });
    state.fail = new Error(`something with ${account.privateKey}`);
    expect(await ask()).toEqual({
      kind: 'immediate',
      status: 502,
      body: `${GCP_TOKEN_FAILED}: no token could be obtained`,
    });
    state.fail = undefined;
    expect(bearer(await ask())).toEqual([['authorization', 'Bearer ya29.t3']]);
    expect(state.calls).toBe(3);
    expect(logs.text()).toContain('Google Cloud token minting failed');
    expect(logs.text()).not.toContain('PRIVATE KEY');
    expect(logs.text()).not.toContain('ya29.');
  });
});

describe('Engine with the gcp provider', () => {
  const run = (engine: Engine, authority: string, scheme = 'https') =>
    engine.handle({ method: 'GET', scheme, authority, path: '/x' }, 'sb-1');

  it('Google API hosts go to the handler; google.com hosts and others pass; plain http is 403', async () => {
    const { handler, state } = setup();
    const logs = captureLogs();
    const engine = new Engine({ policyFor: () => POLICY }, {} as CallbackResolver, logs.log, {
      cloud: { gcp: handler },
    });
    for (const host of [
      'storage.googleapis.com',
      'googleapis.com',
      'bigquery.googleapis.com:443',
      'a.b.googleapis.com',
    ]) {
      expect(bearer(await run(engine, host)), host).toEqual([['authorization', 'Bearer ya29.t1']]);
    }
    for (const host of [
      'www.google.com',
      'google.com',
      'accounts.google.com',
      'googleapis.com.evil.test',
      'xgoogleapis.com',
    ]) {
      expect(await run(engine, host), host).toEqual({ kind: 'continue', set: [], remove: ['proxy-authorization'] });
    }
    expect(await run(engine, 'storage.googleapis.com', 'http')).toMatchObject({ kind: 'immediate', status: 403 });
    expect(state.calls).toBe(1);
  });

  it('without a gcp handler, a Google API request fails closed (502)', async () => {
    const engine = new Engine({ policyFor: () => POLICY }, {} as CallbackResolver, captureLogs().log, {});
    expect(await run(engine, 'storage.googleapis.com')).toEqual({
      kind: 'immediate',
      status: 502,
      body: 'Google Cloud credentials are not available',
    });
  });
});
