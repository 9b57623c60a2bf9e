/**
 * The Engine in process, without gRPC or Envoy: a fake PolicySource serving a real compiled policy, a fake
 * callback resolver, real metrics. Asserts the Outcome and the `authproxy_decisions_total` count of each
 * kind of decision, including the CONNECT and transparent-mode refusals.
 */
import { describe, expect, it } from 'vitest';
import type { CachedCredential } from '../../src/callbacks/cache.js';
import type { CallbackResolver } from '../../src/callbacks/resolver.js';
import type { PolicySource } from '../../src/contracts/engine.js';
import { DECISION_REASONS, refusalBody } from '../../src/contracts/reasons.js';
import type { CompiledPolicy } from '../../src/policy/compiled.js';
import type { PolicyRequest } from '../../src/policy/decide.js';
import { Metrics } from '../../src/metrics/metrics.js';
import { Engine } from '../../src/engine/engine.js';
import { captureLogs } from '../helpers/logs.js';
import { policyFrom } from './support.js';

const policy = policyFrom(`
rules:
  - name: gh
    match_hosts: ["api.github.com"]
    headers: [{ name: Authorization, type: plaintext, value: "Bearer t" }]
callbacks:
  - match_hosts: ["tokens.example.com"]
    url: "https://cb.example.com/resolve"
    ttl_seconds: 300
no_proxy: ["internal.example.com"]
access_control:
  allow_list: ["api.github.com", "tokens.example.com", "internal.example.com", "plain.example.com"]
`);

const source: PolicySource<CompiledPolicy> = { policyFor: (id) => (id === 'sb' ? policy : undefined) };
const cached: CachedCredential = {
  headers: [['authorization', 'Bearer from-callback']],
  expiresAt: Date.now() + 60_000,
};

function engine(): { engine: Engine; metrics: Metrics; lookups: string[] } {
  const lookups: string[] = [];
  const resolver = {
    lookup: (callback: { url: string }, target: { host: string }) => {
      lookups.push(`${callback.url} ${target.host}`);
      return cached;
    },
  } as unknown as CallbackResolver;
  const metrics = new Metrics();
  return { engine: new Engine(source, resolver, captureLogs().log, { metrics }), metrics, lookups };
}

const get = (authority: string, path = '/', scheme = 'https'): PolicyRequest => ({
  method: 'GET',
  scheme,
  authority,
  path,
});

describe('Engine.handle', () => {
  it('injects a rule header, removing Proxy-Authorization', () => {
    const { engine: e, metrics } = engine();
    expect(e.handle(get('api.github.com'), 'sb')).toEqual({
      kind: 'continue',
      set: [['Authorization', 'Bearer t']],
      remove: ['proxy-authorization'],
    });
    expect(metrics.count('decision', 'inject', 'rule')).toBe(1);
  });

  it('passes a host no rule covers, and any request of an unknown sandbox', () => {
    const { engine: e, metrics } = engine();
    expect(e.handle(get('internal.example.com'), 'sb')).toEqual({
      kind: 'continue',
      set: [],
      remove: ['proxy-authorization'],
    });
    expect(e.handle(get('api.github.com'), 'other')).toEqual({
      kind: 'continue',
      set: [],
      remove: ['proxy-authorization'],
    });
    expect(metrics.count('decision', 'pass', 'no_proxy')).toBe(1);
    expect(metrics.count('decision', 'pass', 'unknown_sandbox')).toBe(1);
  });

  it('refuses a host the allow_list lacks and a credentialed host over cleartext, with the table body', () => {
    const { engine: e, metrics } = engine();
    expect(e.handle(get('evil.example.net'), 'sb')).toEqual({
      kind: 'immediate',
      status: 403,
      body: 'egress to this host is not allowed',
    });
    expect(e.handle(get('api.github.com', '/', 'http'), 'sb')).toEqual({
      kind: 'immediate',
      status: 403,
      body: refusalBody('cleartext'),
    });
    expect(metrics.count('decision', 'refuse', 'access_denied')).toBe(1);
    expect(metrics.count('decision', 'refuse', 'cleartext')).toBe(1);
  });

  it('answers a callback rule synchronously on a cache hit', () => {
    const { engine: e, metrics, lookups } = engine();
    const outcome = e.handle(get('tokens.example.com'), 'sb');
    expect(outcome).not.toBeInstanceOf(Promise);
    expect(outcome).toEqual({
      kind: 'continue',
      set: [['authorization', 'Bearer from-callback']],
      remove: ['proxy-authorization'],
    });
    expect(lookups).toEqual(['https://cb.example.com/resolve tokens.example.com']);
    expect(metrics.count('decision', 'inject', 'callback')).toBe(1);
  });
});

describe('Engine.route: CONNECT and transparent-mode refusals are counted', () => {
  it('counts a refused CONNECT under its reason', async () => {
    const { engine: e, metrics } = engine();
    expect(await e.route('CONNECT', 'evil.example.net:443', 'sb')).toEqual({
      kind: 'immediate',
      status: 403,
      body: 'egress to this host is not allowed',
    });
    expect(await e.route('CONNECT', 'api.github.com', 'sb')).toEqual({
      kind: 'immediate',
      status: 403,
      body: 'invalid target',
    });
    expect(metrics.count('decision', 'refuse', 'access_denied')).toBe(1);
    expect(metrics.count('decision', 'refuse', 'invalid_authority')).toBe(1);
  });

  it('counts a refused capture (no SNI) and leaves routed connections uncounted', async () => {
    const { engine: e, metrics } = engine();
    expect(await e.route('CONNECT', '-:443', 'sb', { address: '203.0.113.10', port: 443, kind: 'tls' })).toMatchObject({
      kind: 'immediate',
      status: 403,
    });
    expect(metrics.count('decision', 'refuse', 'no_sni')).toBe(1);
    expect(await e.route('CONNECT', 'api.github.com:443', 'sb')).toMatchObject({ kind: 'route', route: 'intercept' });
    expect(metrics.count('decision', 'refuse', 'access_denied')).toBe(0);
  });
});

describe('the reasons table', () => {
  it('gives every fixed refusal body the status it is sent with', () => {
    for (const [reason, row] of Object.entries(DECISION_REASONS) as [
      string,
      { outcomes: readonly string[]; status?: number; body?: string },
    ][]) {
      if (row.body !== undefined) expect(row.status, reason).toBeDefined();
      if (row.outcomes.includes('refuse') && row.body !== undefined) expect(refusalBody(reason)).toBe(row.body);
    }
    expect(refusalBody('raw_tcp_denied')).toBe('egress to this host is not allowed');
  });
});

describe('docs/operations.md', () => {
  it('lists every reason of the table under each outcome it is counted under', async () => {
    const { readFile } = await import('node:fs/promises');
    const text = (await readFile(new URL('../../docs/operations.md', import.meta.url), 'utf8')).replace(/\s+/g, ' ');
    const start = text.indexOf('The `reason` label of `authproxy_decisions_total`');
    const para = text.slice(start, text.indexOf('Refusals of a CONNECT', start));
    const section = (outcome: string) => para.slice(para.indexOf(`\`${outcome}\`:`)).split(/; `[a-z_]+`:/)[0]!;
    for (const [reason, row] of Object.entries(DECISION_REASONS))
      for (const outcome of row.outcomes) expect(section(outcome), `${outcome} ${reason}`).toContain(`\`${reason}\``);
  });
});
