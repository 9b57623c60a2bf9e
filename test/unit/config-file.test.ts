import { describe, expect, it } from 'vitest';
import { AuthProxyError } from '../../src/errors.js';
import { compileFile, parseConfigFile } from '../../src/config/file.js';

const problems = (fn: () => unknown): readonly string[] => {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(AuthProxyError);
    return (err as AuthProxyError).problems;
  }
  throw new Error('expected an error');
};
const rule = (host: string, value = 'Bearer x') =>
  `{ rules: [{ name: r, match_hosts: ["${host}"], headers: [{ name: Authorization, type: workspace_secret, value: "${value}" }] }] }`;

describe('config file: one proxy_config or a sandboxes: map', () => {
  it('reads a plain proxy_config as the default for every sandbox', () => {
    const file = parseConfigFile('rules: []\n', 'F');
    expect(file.default).toBeDefined();
    expect(file.sandboxes.size).toBe(0);
  });

  it('reads a sandboxes: map with one config per id', () => {
    const file = parseConfigFile(`sandboxes:\n  sb-1: ${rule('a.example.com')}\n  sb-2: {}\n`, 'F');
    expect(file.default).toBeUndefined();
    expect([...file.sandboxes.keys()]).toEqual(['sb-1', 'sb-2']);
  });

  it('names the sandbox and field of every problem', () => {
    expect(
      problems(() =>
        parseConfigFile(
          `sandboxes:\n  sb-1: { rules: [{ name: r, match_hosts: ["*.com"], headers: [{ name: A, type: plaintext, value: v }] }] }\n  "bad id": {}\n`,
          'F',
        ),
      ),
    ).toEqual([
      'F: sandboxes.sb-1.rules[0].match_hosts[0]: "*.com" is too broad: a wildcard needs a domain of at least two labels',
      'F: sandboxes.bad id: sandbox ids are 1-128 characters of A-Z a-z 0-9 . _ : -',
    ]);
  });

  it('refuses top-level proxy_config keys beside sandboxes:', () => {
    expect(problems(() => parseConfigFile('sandboxes: {}\nrules: []\n', 'F'))).toEqual([
      'F: rules: not allowed beside "sandboxes" (put it inside a sandbox\'s config)',
    ]);
    expect(problems(() => parseConfigFile('sandboxes: [1]\n', 'F'))).toEqual([
      'F: sandboxes: must be a map of sandbox id to proxy_config',
    ]);
  });

  it('compiles all or nothing, naming the sandbox of a missing secret', () => {
    const file = parseConfigFile(
      `sandboxes:\n  sb-1: ${rule('a.example.com', 'Bearer {OK}')}\n  sb-2: ${rule('b.example.com', 'Bearer {NOPE}')}\n`,
      'F',
    );
    expect(problems(() => compileFile(file, { secrets: new Map([['OK', 'v']]), unsealer: undefined }, 'F'))).toEqual([
      'F: sandboxes.sb-2.rules[0].headers[0].value: rule "r", header "Authorization": workspace secret "NOPE" is not set',
    ]);
    const compiled = compileFile(
      file,
      {
        secrets: new Map([
          ['OK', 'v'],
          ['NOPE', 'w'],
        ]),
        unsealer: undefined,
      },
      'F',
    );
    expect(compiled.sandboxes.get('sb-2')!.rules[0]!.headers[0]!.value).toBe('Bearer w');
  });

  it("reads tenant_id and organization_id beside a sandbox's proxy_config fields", () => {
    const file = parseConfigFile(
      `sandboxes:\n  sb-1: { tenant_id: acme, organization_id: "org:1", rules: [] }\n  sb-2: { tenant_id: beta }\n  sb-3: {}\n  sb-4:\n`,
      'F',
    );
    expect([...file.sandboxes.keys()]).toEqual(['sb-1', 'sb-2', 'sb-3', 'sb-4']);
    expect(file.sandboxes.get('sb-1')).not.toHaveProperty('tenant_id');
    expect([...file.identities!]).toEqual([
      ['sb-1', { tenantId: 'acme', organizationId: 'org:1' }],
      ['sb-2', { tenantId: 'beta' }],
    ]);
    expect(compileFile(file, { secrets: new Map(), unsealer: undefined }, 'F').identities).toBe(file.identities);
  });

  it('refuses a malformed tenant_id or organization_id, naming sandboxes.ID.tenant_id', () => {
    expect(
      problems(() =>
        parseConfigFile(
          `sandboxes:\n  sb-1: { tenant_id: "a b", rules: [] }\n  sb-2: { organization_id: 5, tenant_id: "${'x'.repeat(129)}" }\n  sb-3: { tenant_id: "" }\n`,
          'F',
        ),
      ),
    ).toEqual([
      'F: sandboxes.sb-1.tenant_id: must be 1-128 characters of A-Z a-z 0-9 . _ : -',
      'F: sandboxes.sb-2.tenant_id: must be 1-128 characters of A-Z a-z 0-9 . _ : -',
      'F: sandboxes.sb-2.organization_id: must be a string',
      'F: sandboxes.sb-3.tenant_id: must be 1-128 characters of A-Z a-z 0-9 . _ : -',
    ]);
    expect(problems(() => parseConfigFile('tenant_id: acme\nrules: []\n', 'F'))).toEqual([
      'F: (root): Unrecognized key: "tenant_id"',
    ]);
  });
});
