/**
 * `rewrite: {sandbox, port}`: compiled with the replica's live links (the address is looked up per request,
 * so a removed link refuses the next request), the engine's answer (plain http to address:port, Host the
 * address), the ext_proc answer's plain-route marker, the schema's refusal of secret headers, and the
 * address rules of src/sandboxes/links.ts.
 */
import { describe, expect, it } from 'vitest';
import { toProcessingResponse } from '../../src/extproc/translate.js';
import { Engine, type RequestExtras } from '../../src/engine/engine.js';
import type { CallbackResolver } from '../../src/callbacks/resolver.js';
import { sandboxAddressProblem } from '../../src/sandboxes/links.js';
import { netProblem } from '../../src/sandboxes/link-store.js';
import { captureLogs } from '../helpers/logs.js';
import { policyFrom, thrown } from './support.js';

const config = `
rules:
  - name: to-svc
    type: rewrite
    match_hosts: ["svc.example"]
    rewrite: { sandbox: sb-2, port: 8080, credentials: redact }
    headers: [{ name: X-From, type: plaintext, value: sb-1 }]
`;
const get = (path: string) => ({ method: 'GET', scheme: 'https', authority: 'svc.example', path });
const extras: RequestExtras = { endOfStream: true, headers: () => ({ authorization: ['Bearer sandbox-own'] }) };

describe('rewrite to another sandbox', () => {
  const links = new Map<string, string>([['sb-1>sb-2:8080', '10.0.3.7']]);
  const sandboxLinks = { dial: (from: string, to: string, port: number) => links.get(`${from}>${to}:${port}`) };
  const policy = policyFrom(config, new Map(), undefined, { sandboxId: 'sb-1', sandboxLinks });
  const logs = captureLogs();
  const engine = new Engine({ policyFor: () => policy }, {} as CallbackResolver, logs.log);

  it('goes over plain http to the linked address and port: Host address:port, credentials policy, then the rule headers', () => {
    expect(engine.handle(get('/a?b=1'), 'sb-1', extras)).toEqual({
      kind: 'rewrite',
      set: [
        [':authority', '10.0.3.7:8080'],
        ['authorization', 'Bearer redacted'],
        ['X-From', 'sb-1'],
      ],
      remove: ['proxy-authorization'],
      dial: { host: '10.0.3.7', port: 8080 },
      plain: true,
    });
  });

  it('follows a changed address and refuses once the link is gone (403), with no recompile', () => {
    links.set('sb-1>sb-2:8080', 'fd00::7');
    expect(engine.handle(get('/'), 'sb-1', extras)).toMatchObject({
      set: [[':authority', '[fd00::7]:8080'], expect.anything(), expect.anything()],
      dial: { host: 'fd00::7', port: 8080 },
    });
    links.clear();
    expect(engine.handle(get('/'), 'sb-1', extras)).toEqual({
      kind: 'immediate',
      status: 403,
      body: 'no sandbox link allows this destination',
    });
    expect(logs.text()).toContain('rewrite to sandbox refused');
  });

  it('marks the ext_proc answer plain: the intercepting listener routes on that metadata', () => {
    const answer = toProcessingResponse({
      kind: 'rewrite',
      set: [[':authority', '10.0.3.7:8080']],
      remove: [],
      dial: { host: '10.0.3.7', port: 8080 },
      plain: true,
    });
    expect(answer.dynamicMetadata).toEqual({
      authproxy: { target_host: '10.0.3.7', target_port: '8080', upstream: 'plain' },
    });
  });

  it('is refused when written (requireLinks) while nothing allows it, naming the field and the reason', () => {
    const whyNot = () => 'sandbox "sb-2" has no address (PUT /v1/sandboxes/sb-2/address)';
    const err = thrown(() =>
      policyFrom(config, new Map(), undefined, {
        sandboxId: 'sb-1',
        sandboxLinks: { dial: () => undefined, whyNot },
        requireLinks: true,
      }),
    );
    expect(err.problems).toEqual([
      'rules[0].rewrite.sandbox: sandbox "sb-2" has no address (PUT /v1/sandboxes/sb-2/address)',
    ]);
  });

  it('refuses headers holding a secret: they would go in cleartext', () => {
    const err = thrown(() =>
      policyFrom(
        'rules: [{ name: r, type: rewrite, match_hosts: [a.example], rewrite: { sandbox: sb-2, port: 80 }, headers: [{ name: X-Key, type: workspace_secret, value: "{K}" }] }]',
        new Map([['K', 'v']]),
        undefined,
        {
          sandboxId: 'sb-1',
          sandboxLinks,
        },
      ),
    );
    expect(err.problems[0]).toMatch(
      /^TEST: rules\[0\]\.headers\[0\]\.type: a sandbox destination is plain http, and credentials are never sent in cleartext/,
    );
  });
});

describe('sandbox addresses and link records', () => {
  const never = () => false;
  it('takes private and public IPs; refuses names, metadata, link-local, unspecified and (unless opened) loopback', () => {
    expect(sandboxAddressProblem('10.0.3.7', never)).toBeUndefined();
    expect(sandboxAddressProblem('fd00::7', never)).toBeUndefined();
    expect(sandboxAddressProblem('svc.internal', never)).toMatch(/^must be an IP address/);
    expect(sandboxAddressProblem('169.254.169.254', never)).toMatch(/metadata address/);
    expect(sandboxAddressProblem('169.254.1.1', never)).toMatch(/link-local address/);
    expect(sandboxAddressProblem('0.0.0.0', never)).toMatch(/unspecified/);
    expect(sandboxAddressProblem('127.0.0.1', never)).toMatch(/^is a loopback address/);
    expect(sandboxAddressProblem('127.0.0.1', () => true)).toBeUndefined();
  });

  it('checks a stored record field by field', () => {
    expect(netProblem({ address: '10.0.0.1', links: { 'sb-2': [80, 443] } })).toBeUndefined();
    expect(netProblem({ address: 'x', links: {} })).toBe('address: must be an IP address');
    expect(netProblem({ links: { 'sb-2': [] } })).toBe('links.sb-2: 1..64 ports');
    expect(netProblem({ links: { 'sb-2': [0] } })).toBe('links.sb-2: ports are 1..65535');
    expect(netProblem({ links: { '-bad': [1] } })).toBe('links: a target is not a sandbox id');
  });
});
