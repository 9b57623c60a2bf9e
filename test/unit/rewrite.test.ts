/**
 * `type: rewrite` rules without Envoy: compiling (the sandbox variant's config errors), matching in the one
 * rule list with header rules, the header arithmetic of each credentials policy, the engine's egress guard
 * on the new host, and the ext_proc answer that carries it.
 */
import { describe, expect, it } from 'vitest';
import { decide } from '../../src/policy/decide.js';
import { compiledRewrite, redact, rewriteMutation } from '../../src/policy/rewrite.js';
import { toProcessingResponse } from '../../src/extproc/translate.js';
import { Engine, type Outcome, type RequestExtras } from '../../src/engine/engine.js';
import { EgressGuard } from '../../src/egress/guard.js';
import { UpstreamRoute } from '../../src/egress/upstream-proxy.js';
import { REWRITE_VIA_PROXY } from '../../src/engine/rewrite.js';
import type { CallbackResolver } from '../../src/callbacks/resolver.js';
import { captureLogs } from '../helpers/logs.js';
import { explain } from '../../src/cli/explain.js';
import { headerNameProblem } from '../../src/config/schema.js';
import { policyFrom, thrown } from './support.js';

const SECRET = 'sk-FAKE-rewrite-canary-3333';
const secrets = new Map([['KEY', SECRET]]);
const config = `
rules:
  - name: header-first
    match_hosts: ["api.old.example"]
    match_paths: ["/header/*"]
    headers: [{ name: Authorization, type: workspace_secret, value: "Bearer {KEY}" }]
  - name: moved
    type: rewrite
    match_hosts: ["api.old.example", "*.legacy.example"]
    rewrite: { host: API.New.Example, port: 8443, credentials: redact }
    headers: [{ name: X-Api-Key, type: workspace_secret, value: "{KEY}" }]
  - name: never-reached
    match_hosts: ["api.old.example"]
    headers: [{ name: Authorization, type: plaintext, value: "Bearer later" }]
  - name: disabled
    type: rewrite
    enabled: false
    match_hosts: ["off.example"]
    rewrite: { host: on.example, port: 443 }
`;
const get = (path: string, authority = 'api.old.example') => ({ method: 'GET', scheme: 'https', authority, path });

describe('compiling rewrite rules', () => {
  const policy = policyFrom(config, secrets);

  it('puts them in the one rule list, with the destination (host lower-cased, port in the authority unless 443)', () => {
    expect(policy.rules.map((r) => r.name)).toEqual(['header-first', 'moved', 'never-reached']);
    expect(policy.rules[1]!.rewrite).toEqual({
      host: 'api.new.example',
      port: 8443,
      authority: 'api.new.example:8443',
      credentials: 'redact',
    });
    expect(policy.rules[0]!.rewrite).toBeUndefined();
    expect(compiledRewrite('a.example', 443, 'strip').authority).toBe('a.example');
  });

  it('defaults credentials to strip and headers to none', () => {
    const p = policyFrom(
      'rules: [{ name: r, type: rewrite, match_hosts: [a.example], rewrite: { host: b.example, port: 443 } }]',
    );
    expect(p.rules[0]).toMatchObject({ headers: [], rewrite: { credentials: 'strip' } });
    expect(p.source.rules[0]).toMatchObject({ headers: [], rewrite: { credentials: 'strip' } });
  });

  it('refuses a sandbox destination in sidecar mode (no sandbox links), saying why', () => {
    const err = thrown(() =>
      policyFrom(
        'rules: [{ name: r, type: rewrite, match_hosts: [a.example], rewrite: { sandbox: sb-2, port: 8080 } }]',
      ),
    );
    expect(err.problems).toEqual([
      'rules[0].rewrite.sandbox: a sandbox destination needs a link kept by the admin API (shared-service mode); sidecar mode and config files have no other sandboxes to reach',
    ]);
  });

  it('refuses a sandbox destination that no link allows', () => {
    const sandboxLinks = {
      dial: (from: string, to: string, port: number) =>
        from === 'sb-1' && to === 'sb-2' && port === 9000 ? '10.0.0.2:9000' : undefined,
    };
    const err = thrown(() =>
      policyFrom(
        'rules: [{ name: r, type: rewrite, match_hosts: [a.example], rewrite: { sandbox: sb-2, port: 8080 } }]',
        new Map(),
        undefined,
        { sandboxId: 'sb-1', sandboxLinks, requireLinks: true },
      ),
    );
    expect(err.problems).toEqual([
      'rules[0].rewrite.sandbox: no link lets sandbox "sb-1" reach sandbox "sb-2" on port 8080',
    ]);
  });
});

describe('matching: rewrite rules stand in the rule list like header rules', () => {
  const policy = policyFrom(config, secrets);

  it('first match wins across header and rewrite rules, in config order', () => {
    const header = decide(policy, get('/header/x'));
    expect(header).toMatchObject({ outcome: 'inject', rule: { name: 'header-first' } });
    const moved = decide(policy, get('/v1/x'));
    expect(moved).toMatchObject({ outcome: 'inject', rule: { name: 'moved', rewrite: { host: 'api.new.example' } } });
    expect(decide(policy, get('/', 'a.b.legacy.example'))).toMatchObject({ rule: { name: 'moved' } });
  });

  it('skips disabled rewrite rules and refuses plain http to a rewritten host', () => {
    expect(decide(policy, get('/', 'off.example'))).toMatchObject({ outcome: 'pass', reason: 'no_match' });
    expect(decide(policy, { ...get('/'), scheme: 'http' })).toMatchObject({
      outcome: 'refuse',
      status: 403,
      reason: 'cleartext',
    });
  });
});

describe('the header mutation of each credentials policy', () => {
  const sent = { authorization: ['Bearer sandbox-token'], cookie: ['a=b'], 'x-api-key': ['k'], accept: ['*/*'] };
  const dest = (credentials: 'strip' | 'redact' | 'keep') => compiledRewrite('new.example', 443, credentials);

  it('strip removes every credential header the sandbox may send, and Proxy-Authorization', () => {
    const m = rewriteMutation(dest('strip'), [], () => sent);
    expect(m.set).toEqual([[':authority', 'new.example']]);
    expect(m.remove).toEqual(
      expect.arrayContaining([
        'authorization',
        'proxy-authorization',
        'cookie',
        'x-api-key',
        'api-key',
        'x-goog-api-key',
      ]),
    );
  });

  it('redact replaces the values the sandbox sent, keeping an auth scheme', () => {
    const m = rewriteMutation(dest('redact'), [], () => sent);
    expect(m.set).toEqual([
      [':authority', 'new.example'],
      ['authorization', 'Bearer redacted'],
      ['cookie', 'redacted'],
      ['x-api-key', 'redacted'],
    ]);
    expect(m.remove).toEqual(['proxy-authorization']);
  });

  it('keep forwards them (only Proxy-Authorization goes)', () => {
    expect(rewriteMutation(dest('keep'), [], () => sent)).toEqual({
      set: [[':authority', 'new.example']],
      remove: ['proxy-authorization'],
    });
  });

  it("sets the rule's headers last, and never removes a header the rule sets", () => {
    const m = rewriteMutation(dest('strip'), [['Authorization', 'Bearer real']], () => sent);
    expect(m.set.at(-1)).toEqual(['Authorization', 'Bearer real']);
    expect(m.remove).not.toContain('authorization');
    expect(rewriteMutation(dest('redact'), [['Authorization', 'Bearer real']], () => sent).set).not.toContainEqual([
      'authorization',
      'Bearer redacted',
    ]);
  });

  it('redacts an Authorization scheme as written, anything else whole', () => {
    expect(redact('authorization', 'Basic dXNlcjpwYXNz')).toBe('Basic redacted');
    expect(redact('authorization', 'token-without-scheme')).toBe('redacted');
    expect(redact('cookie', 'Bearer x')).toBe('redacted');
  });
});

describe('the engine and the ext_proc answer', () => {
  const policy = policyFrom(config, secrets);
  const extras: RequestExtras = { endOfStream: true, headers: () => ({ authorization: ['Bearer sandbox'] }) };
  const engine = (answer: readonly string[]) => {
    const logs = captureLogs();
    const guard = new EgressGuard({ resolve: async () => answer });
    return {
      logs,
      engine: new Engine({ policyFor: () => policy }, {} as CallbackResolver, logs.log, { egress: guard }),
    };
  };

  it('through --upstream-proxy a host rewrite fails closed (502) instead of going through the original tunnel', async () => {
    const logs = captureLogs();
    const upstream = UpstreamRoute.fromFlags('http://proxy.corp.example:3128', undefined);
    const guard = new EgressGuard({ resolve: async () => ['203.0.113.9'] }, [], upstream);
    const e = new Engine({ policyFor: () => policy }, {} as CallbackResolver, logs.log, { egress: guard });
    expect(await e.handle(get('/v1/x'), 'sb', extras)).toEqual({
      kind: 'immediate',
      status: 502,
      body: REWRITE_VIA_PROXY,
    });
  });

  it('pins the checked address of the new host, with the headers set', async () => {
    const { engine: e } = engine(['203.0.113.9']);
    const outcome = await e.handle(get('/v1/x'), 'sb', extras);
    expect(outcome).toEqual({
      kind: 'rewrite',
      set: [
        [':authority', 'api.new.example:8443'],
        ['authorization', 'Bearer redacted'],
        ['X-Api-Key', SECRET],
      ],
      remove: ['proxy-authorization'],
      dial: { host: '203.0.113.9', port: 8443 },
    });
  });

  it('refuses a new host that resolves to a private address (403) or to nothing (502), logging no secret', async () => {
    const { engine: e, logs } = engine(['203.0.113.9', '10.1.2.3']);
    expect(await e.handle(get('/v1/x'), 'sb', extras)).toEqual({
      kind: 'immediate',
      status: 403,
      body: 'destination resolves to a private address',
    });
    expect(await engine([]).engine.handle(get('/v1/x'), 'sb', extras)).toEqual({
      kind: 'immediate',
      status: 502,
      body: 'destination could not be resolved',
    });
    expect(logs.text()).toContain('rewrite destination refused');
    expect(logs.text()).not.toContain(SECRET);
  });

  it('answers Envoy with :authority set, the route cache cleared and the dial target as dynamic metadata', () => {
    const outcome: Outcome = {
      kind: 'rewrite',
      set: [[':authority', 'new.example']],
      remove: ['cookie'],
      dial: { host: '2001:db8::1', port: 443 },
    };
    const answer = toProcessingResponse(outcome);
    if (answer.response?.$case !== 'requestHeaders') throw new Error('not a request_headers answer');
    const common = answer.response.value.response!;
    expect(common.clearRouteCache).toBe(true);
    expect(
      common.headerMutation!.setHeaders.map((h) => [h.header!.key, h.header!.rawValue.toString(), h.header!.value]),
    ).toEqual([[':authority', 'new.example', '']]);
    expect(common.headerMutation!.removeHeaders).toEqual(['cookie']);
    expect(answer.dynamicMetadata).toEqual({ authproxy: { target_host: '[2001:db8::1]', target_port: '443' } });
  });
});

describe('authproxy explain', () => {
  it('shows the destination (path and query kept), the credentials policy and the headers, secrets redacted', () => {
    const out = explain(policyFrom(config, secrets), 'get', 'https://api.old.example/v1/x?y=1', 'sb');
    expect(out).toMatchObject({
      outcome: 'rewrite',
      rule: 'moved',
      rewrite: {
        url: 'https://api.new.example:8443/v1/x?y=1',
        host: 'api.new.example',
        port: 8443,
        credentials: 'redact',
      },
      set_headers: [
        { name: ':authority', value: 'api.new.example:8443' },
        { name: 'X-Api-Key', value: '[redacted]' },
      ],
      remove_headers: ['proxy-authorization'],
    });
    expect(out.redact_headers).toEqual(expect.arrayContaining(['authorization', 'cookie']));
    expect(out.redact_headers).not.toContain('x-api-key');
    expect(JSON.stringify(out)).not.toContain(SECRET);
  });
});

describe('only a rewrite answer changes the destination', () => {
  it('no header a rule or a callback answer may set names :authority or Host (Envoy lets the intercepting listener set :authority)', () => {
    for (const name of [':authority', 'Host', 'host', ':scheme', 'x-envoy-original-host'])
      expect(headerNameProblem(name), name).toBeDefined();
  });
});
