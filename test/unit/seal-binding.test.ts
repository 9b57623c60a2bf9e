/**
 * Sealed values bound to where they may go: the binding (sandbox, and the rule's hosts / the provider /
 * the callback's origin) is the seal's authenticated data and is checked when a config is applied.
 */
import { describe, expect, it } from 'vitest';
import { validateConfig } from '../../src/config/load.js';
import { compileFile, parseConfigFile } from '../../src/config/file.js';
import {
  generateSealingKeys,
  parsePrivateKey,
  parsePublicKey,
  parseSealed,
  seal,
  SEALED_PREFIX,
  SHAPE_ONLY_UNSEALER,
  Unsealer,
} from '../../src/secrets/sealing.js';
import { bindingProblem, encodeBinding, type SealBinding } from '../../src/secrets/seal-binding.js';
import { MAX_OPAQUE_BYTES } from '../../src/admin/config-input.js';
import { policyFrom, thrown } from './support.js';

const PLAIN = 'Bearer sk-FAKE-bound-canary-7777';
const keys = generateSealingKeys();
const publicKey = parsePublicKey(keys.publicPem, 'sealing.pub');
const unsealer = new Unsealer(parsePrivateKey(keys.privatePem, 'sealing.key'));
const sealFor = (binding: SealBinding, plain = PLAIN) => seal(plain, publicKey, binding);

const rule = (hosts: string[], value: string) => `rules:
  - name: r
    match_hosts: ${JSON.stringify(hosts)}
    headers: [{ name: Authorization, type: opaque, value: "${value}" }]
`;
const callback = (url: string, value: string) => `callbacks:
  - match_hosts: ["api.example.com"]
    url: "${url}"
    ttl_seconds: 300
    request_headers: [{ name: X-Key, type: opaque, value: "${value}" }]
`;
const aws = (value: string) => `rules:
  - name: cloud
    type: aws
    aws: { access_key_id: { type: opaque, value: "${value}" }, secret_access_key: { type: opaque, value: "${value}" } }
`;
const FIELD = 'rules[0].headers[0].value: rule "r", header "Authorization": sealed value';

describe('the sealed format', () => {
  it('version 2 carries the binding as authenticated data; version 1 is recognised as unbound', () => {
    const bound = sealFor({ sandbox: 'sb-1', target: { hosts: ['API.example.com', 'api.example.com'] } });
    expect(parseSealed(bound).binding).toEqual({ sandbox: 'sb-1', target: { hosts: ['api.example.com'] } });
    expect(parseSealed(bound).blob[0]).toBe(2);
    expect(unsealer.unseal(bound)).toBe(PLAIN);
    expect(bound).not.toContain('canary');
    const unbound = seal(PLAIN, publicKey);
    expect(parseSealed(unbound).binding).toBeUndefined();
    expect(unsealer.unseal(unbound)).toBe(PLAIN);
  });

  it('an edited binding breaks the seal', () => {
    const bound = sealFor({ sandbox: 'sb-1', target: { hosts: ['api.example.com'] } });
    const blob = Buffer.from(bound.slice(SEALED_PREFIX.length), 'base64url');
    const text = blob.toString('latin1').replace('sb-1', 'sb-2');
    const edited = SEALED_PREFIX + Buffer.from(text, 'latin1').toString('base64url');
    expect(parseSealed(edited).binding?.sandbox).toBe('sb-2');
    expect(thrown(() => unsealer.unseal(edited)).message).toBe(
      'cannot be unsealed with this sealing key (sealed to another key, or corrupted)',
    );
  });

  it('a largest opaque value with a 1 KiB binding still fits a stored header value', () => {
    const hosts = Array.from({ length: 25 }, (_, i) => `host-${i}-abcdefghij.example.com`);
    expect(encodeBinding({ sandbox: 'x'.repeat(128), target: { hosts } }).length).toBeLessThanOrEqual(1024);
    const value = sealFor({ sandbox: 'x'.repeat(128), target: { hosts } }, 'F'.repeat(MAX_OPAQUE_BYTES));
    expect(() =>
      validateConfig(
        { rules: [{ name: 'r', match_hosts: hosts, headers: [{ name: 'A', type: 'opaque', value }] }] },
        't',
      ),
    ).not.toThrow();
    expect(() =>
      encodeBinding({
        sandbox: '*',
        target: { hosts: Array.from({ length: 80 }, (_, i) => `host-${i}-abcdefghij.example.com`) },
      }),
    ).toThrow(/longer than 1024 bytes/);
  });
});

describe('a sealed value is only opened where it was sealed for', () => {
  it('its own sandbox and hosts (or fewer of them, or names below a sealed wildcard) open it', () => {
    const value = sealFor({ sandbox: 'sb-1', target: { hosts: ['api.example.com', '*.uploads.example.com'] } });
    for (const hosts of [
      ['api.example.com'],
      ['api.example.com', 'a.uploads.example.com'],
      ['*.x.uploads.example.com'],
    ]) {
      const policy = policyFrom(rule(hosts, value), new Map(), unsealer, { sandboxId: 'sb-1' });
      expect(policy.rules[0]!.headers[0]!.value).toBe(PLAIN);
      expect(policy.sandboxBound).toBe(true);
    }
    const any = policyFrom(
      rule(['api.example.com'], sealFor({ sandbox: '*', target: { hosts: ['api.example.com'] } })),
      new Map(),
      unsealer,
      { sandboxId: 'sb-9' },
    );
    expect(any.rules[0]!.headers[0]!.value).toBe(PLAIN);
    expect(any.sandboxBound).toBeUndefined();
  });

  it("copied into another sandbox's config, it is refused with one line naming the field", () => {
    const value = sealFor({ sandbox: 'sb-1', target: { hosts: ['api.example.com'] } });
    const err = thrown(() => policyFrom(rule(['api.example.com'], value), new Map(), unsealer, { sandboxId: 'sb-2' }));
    expect(err.problems).toEqual([`${FIELD} is bound to sandbox "sb-1", not "sb-2"`]);
    expect(err.message).not.toContain('canary');
    expect(thrown(() => policyFrom(rule(['api.example.com'], value), new Map(), unsealer)).problems[0]).toContain(
      'is bound to sandbox "sb-1", and this config is not one sandbox\'s own',
    );
  });

  it('in a rewrite rule, it is bound to the destination, not to the matched hosts', () => {
    const value = sealFor({ sandbox: '*', target: { hosts: ['api.example.com'] } });
    const rewrite = (to: string) => `rules:
  - name: r
    type: rewrite
    match_hosts: ["api.example.com"]
    rewrite: { host: ${to}, port: 443 }
    headers: [{ name: Authorization, type: opaque, value: "${value}" }]
`;
    expect(policyFrom(rewrite('api.example.com'), new Map(), unsealer).rules[0]!.headers[0]!.value).toBe(PLAIN);
    expect(thrown(() => policyFrom(rewrite('evil.example.net'), new Map(), unsealer)).problems).toEqual([
      `${FIELD} is bound to hosts api.example.com; "evil.example.net" is not among them`,
    ]);
  });

  it('moved to a rule for other hosts, it is refused (also by validate, without the key)', () => {
    const value = sealFor({ sandbox: '*', target: { hosts: ['api.example.com', '*.example.org'] } });
    for (const hosts of [
      ['evil.example.net'],
      ['api.example.com', 'evil.example.net'],
      ['example.org'],
      ['*.other.example.com'],
    ]) {
      const err = thrown(() => policyFrom(rule(hosts, value), new Map(), unsealer, { sandboxId: 'sb-1' }));
      expect(err.problems).toEqual([
        `${FIELD} is bound to hosts *.example.org, api.example.com; "${hosts.at(-1)}" is not among them`,
      ]);
      expect(thrown(() => policyFrom(rule(hosts, value), new Map(), SHAPE_ONLY_UNSEALER)).problems).toHaveLength(1);
    }
  });

  it("a provider's Secret is bound to the provider, a callback header to the callback's origin", () => {
    const forAws = sealFor({ sandbox: '*', target: { provider: 'aws' } }, 'AKIAFAKECANARY000000');
    expect(policyFrom(aws(forAws), new Map(), unsealer).aws?.auth).toMatchObject({
      kind: 'static',
      accessKeyId: 'AKIAFAKECANARY000000',
    });
    const wrong = thrown(() =>
      policyFrom(aws(sealFor({ sandbox: '*', target: { hosts: ['sts.amazonaws.com'] } })), new Map(), unsealer),
    );
    expect(wrong.problems[0]).toBe(
      'rules[0].aws.access_key_id: rule "cloud": sealed value is bound to hosts sts.amazonaws.com, not to provider aws',
    );
    expect(thrown(() => policyFrom(rule(['api.example.com'], forAws), new Map(), unsealer)).problems[0]).toBe(
      `${FIELD} is bound to provider aws, not to hosts api.example.com`,
    );

    const forCallback = sealFor({ sandbox: '*', target: { callback: 'https://tokens.example.com' } });
    const ok = policyFrom(callback('https://tokens.example.com/v2/resolve?x=1', forCallback), new Map(), unsealer);
    expect(ok.callbacks[0]!.requestHeaders[0]!.value).toBe(PLAIN);
    for (const url of [
      'https://tokens.example.com:8443/resolve',
      'http://tokens.example.com/resolve',
      'https://evil.example.com/resolve',
    ]) {
      const err = thrown(() => policyFrom(callback(url, forCallback), new Map(), unsealer));
      expect(err.problems[0]).toMatch(
        /^callbacks\[0\]\.request_headers\[0\]\.value: callback .*, header "X-Key": sealed value is bound to callback https:\/\/tokens\.example\.com, not to callback /,
      );
    }
  });

  it('an unbound value is refused unless --allow-unbound-seals, which reports it for a warning', () => {
    const value = seal(PLAIN, publicKey);
    const err = thrown(() => policyFrom(rule(['api.example.com'], value), new Map(), unsealer, { sandboxId: 'sb-1' }));
    expect(err.problems).toEqual([
      `${FIELD} is not bound to a sandbox and hosts (sealed before bindings existed); seal it again with \`authproxy seal --sandbox ID|'*' --hosts ...\`, or serve with --allow-unbound-seals`,
    ]);
    const allowed = policyFrom(rule(['api.example.com'], value), new Map(), unsealer, {
      sandboxId: 'sb-1',
      allowUnboundSeals: true,
    });
    expect(allowed.rules[0]!.headers[0]!.value).toBe(PLAIN);
    expect(allowed.unboundSeals).toEqual(['rules[0].headers[0].value: rule "r", header "Authorization"']);
  });

  it("a file's sandboxes: entries are checked as their own sandbox's, the top-level config as --sandbox-id's", () => {
    const forA = sealFor({ sandbox: 'sb-a', target: { hosts: ['api.example.com'] } });
    const text = `sandboxes:\n  sb-a:\n${rule(['api.example.com'], forA).replace(/^/gm, '    ')}\n  sb-b:\n${rule(['api.example.com'], forA).replace(/^/gm, '    ')}`;
    const err = thrown(() => compileFile(parseConfigFile(text, 'F'), { secrets: new Map(), unsealer }, 'F'));
    expect(err.problems).toEqual([`F: sandboxes.sb-b.${FIELD} is bound to sandbox "sb-a", not "sb-b"`]);
    const top = compileFile(
      parseConfigFile(rule(['api.example.com'], forA), 'F'),
      { secrets: new Map(), unsealer, sandboxId: 'sb-a' },
      'F',
    );
    expect(top.default?.sandboxBound).toBe(true);
  });

  it('bindingProblem: a rule for fewer hosts is within, another kind of target is not', () => {
    const b: SealBinding = { sandbox: '*', target: { hosts: ['a.example.com', 'b.example.com'] } };
    expect(bindingProblem(b, 'sb', { hosts: ['b.example.com'] })).toBeUndefined();
    expect(bindingProblem(b, 'sb', { provider: 'gcp' })).toBe(
      'is bound to hosts a.example.com, b.example.com, not to provider gcp',
    );
  });
});
