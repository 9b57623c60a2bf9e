import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { compilePolicy } from '../../src/config/compile.js';
import { parseConfigText, validateConfig } from '../../src/config/load.js';
import {
  generateSealingKeys,
  parsePrivateKey,
  parsePublicKey,
  seal,
  SHAPE_ONLY_UNSEALER,
  Unsealer,
} from '../../src/secrets/sealing.js';
import { CANARY, LANGCHAIN_SECRETS, policyFrom, thrown } from './support.js';

const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures');
const read = (sub: string, name: string) => readFileSync(join(FIXTURES, sub, name), 'utf8');
const list = (sub: string) =>
  readdirSync(join(FIXTURES, sub))
    .filter((f) => /\.(ya?ml|json)$/.test(f))
    .sort();

/** The `# expect: ...` lines that open an invalid fixture: the exact problems, in order. */
function expectations(text: string): string[] {
  const out: string[] = [];
  for (const line of text.split('\n')) {
    const m = /^# expect: (.*)$/.exec(line);
    if (!m) break;
    out.push(m[1]!);
  }
  return out;
}

describe('invalid fixtures (one problem set per file, source name "FILE")', () => {
  const files = list('invalid');

  it('has the fixtures the suite is meant to cover', () => {
    expect(files.length).toBeGreaterThanOrEqual(37);
    for (const f of files) expect(read('invalid', f).startsWith('# expect: '), f).toBe(true);
  });

  it.each(files)('%s', (file) => {
    const text = read('invalid', file);
    const expected = expectations(text);
    expect(expected.length).toBeGreaterThan(0);
    const err = thrown(() => parseConfigText(text, 'FILE'));
    expect(err.code).toBe('config_invalid');
    expect(err.problems).toEqual(expected);
    expect(err.message).toBe(expected.join('; '));
    expect(err.message).not.toMatch(/FAKE/);
    expect(err.message).not.toContain('\n');
  });
});

describe('valid fixtures', () => {
  it.each(list('valid'))('%s validates and compiles', (file) => {
    const config = parseConfigText(read('valid', file), file);
    const policy = compilePolicy(config, { secrets: LANGCHAIN_SECRETS, unsealer: undefined });
    expect(policy.source).toBe(config);
  });

  it('the LangChain-style config compiles to the expected headers', () => {
    const policy = policyFrom(read('valid', 'langchain.yaml'), LANGCHAIN_SECRETS);
    expect(policy.rules.map((r) => r.name)).toEqual(['openai', 'anthropic', 'github-api', 'github-git']);
    const headers = Object.fromEntries(
      policy.rules.map((r) => [r.name, r.headers.map((h) => [h.name, h.value, h.sensitive])]),
    );
    expect(headers).toEqual({
      openai: [['Authorization', `Bearer ${CANARY.openai}`, true]],
      anthropic: [
        ['x-api-key', CANARY.anthropic, true],
        ['anthropic-version', '2023-06-01', false],
      ],
      'github-api': [['Authorization', `Bearer ${CANARY.github}`, true]],
      'github-git': [['Authorization', `Basic ${CANARY.gitBasic}`, true]],
    });
    expect(policy.source.rules[0]!.env_vars).toEqual({ OPENAI_API_KEY: 'proxy-injected' });
    expect(policy.source.rules[2]!.match_paths).toEqual(['/repos/*', '/user', '/user/*', '/graphql']);
  });

  it('applies defaults and canonicalises host patterns', () => {
    const config = parseConfigText(read('valid', 'callbacks-and-allow-list.yaml'), 'FILE');
    expect(config.rules[0]!.enabled).toBe(false);
    expect(config.rules[0]!.match_hosts).toEqual(['*.internal.example.com', 'api.example.com']);
    expect(config.rules[0]!.env_vars).toEqual({});
    expect(config.callbacks[1]!.request_headers).toEqual([]);
    expect(config.no_proxy).toEqual(['::1', '10.1.2.3', '*.svc.cluster.local']);
    const minimal = validateConfig(
      {
        rules: [{ name: 'r', match_hosts: ['a.example.com'], headers: [{ name: 'A', type: 'plaintext', value: 'v' }] }],
      },
      'X',
    );
    expect(minimal.rules[0]).toMatchObject({ enabled: true, match_paths: [], env_vars: {} });
    expect(minimal.callbacks).toEqual([]);
    expect(minimal.access_control).toBeUndefined();
  });

  it('an empty document is an empty config', () => {
    expect(parseConfigText(read('valid', 'empty.yaml'), 'FILE')).toEqual({ rules: [], callbacks: [], no_proxy: [] });
  });

  it('accepts the boundary values ttl 60 and 3600 and a 1024-character description', () => {
    const cb = (ttl: number) => ({ match_hosts: ['api.example.com'], url: 'https://t.example/', ttl_seconds: ttl });
    expect(validateConfig({ callbacks: [cb(60), cb(3600)] }, 'X').callbacks.map((c) => c.ttl_seconds)).toEqual([
      60, 3600,
    ]);
    expect(validateConfig({ description: 'd'.repeat(1024) }, 'X').description).toHaveLength(1024);
  });

  it('accepts "?" in match_paths (contract: "?" matches one character)', () => {
    const rule = {
      name: 'r',
      match_hosts: ['a.example.com'],
      match_paths: ['/v?/items'],
      headers: [{ name: 'A', type: 'plaintext', value: 'v' }],
    };
    expect(validateConfig({ rules: [rule] }, 'X').rules[0]!.match_paths).toEqual(['/v?/items']);
  });

  it('validateConfig reports every problem, each naming source and field', () => {
    const err = thrown(() =>
      validateConfig({ rules: [{ name: '', match_hosts: ['*.com'], headers: [] }], no_proxy: 'localhost' }, 'api'),
    );
    expect(err.problems).toEqual([
      'api: rules[0].name: must not be empty',
      'api: rules[0].match_hosts[0]: "*.com" is too broad: a wildcard needs a domain of at least two labels',
      'api: rules[0].headers: needs at least one header',
      'api: no_proxy: Invalid input: expected array, received string',
    ]);
  });
});

const ONE_RULE = (headers: string, enabled = true) => `rules:
  - name: openai
    enabled: ${enabled}
    match_hosts: ["api.openai.com"]
    headers:
${headers}
`;

describe('compile-time failures', () => {
  it('a missing workspace secret names rule, header and KEY', () => {
    const yaml = ONE_RULE('      - { name: Authorization, type: workspace_secret, value: "Bearer {OPENAI_API_KEY}" }');
    const err = thrown(() => policyFrom(yaml, new Map()));
    expect(err.code).toBe('config_invalid');
    expect(err.problems).toEqual([
      'rules[0].headers[0].value: rule "openai", header "Authorization": workspace secret "OPENAI_API_KEY" is not set',
    ]);
  });

  it('gathers every missing KEY, also from disabled rules (the config is applied whole or not at all)', () => {
    const yaml = ONE_RULE('      - { name: X-Key, type: workspace_secret, value: "{ALPHA}:{BETA}:{ALPHA}" }', false);
    const err = thrown(() => policyFrom(yaml, new Map([['OTHER', CANARY.openai]])));
    expect(err.problems).toEqual([
      'rules[0].headers[0].value: rule "openai", header "X-Key": workspace secret "ALPHA" is not set',
      'rules[0].headers[0].value: rule "openai", header "X-Key": workspace secret "BETA" is not set',
    ]);
  });

  it('a workspace_secret value without a placeholder is rejected', () => {
    const err = thrown(() =>
      policyFrom(ONE_RULE('      - { name: Authorization, type: workspace_secret, value: "Bearer OPENAI_API_KEY" }')),
    );
    expect(err.problems).toEqual([
      'rules[0].headers[0].value: rule "openai", header "Authorization": workspace_secret value has no {KEY} placeholder',
    ]);
  });

  it('a secret that would make an invalid header value is rejected without echoing it', () => {
    const secret = `${CANARY.openai}\r\nX-Evil: 1`;
    const err = thrown(() =>
      policyFrom(
        ONE_RULE('      - { name: Authorization, type: workspace_secret, value: "Bearer {K}" }'),
        new Map([['K', secret]]),
      ),
    );
    expect(err.problems).toEqual([
      'rules[0].headers[0].value: rule "openai", header "Authorization": resolved value must not contain CR, LF or NUL',
    ]);
    expect(err.message).not.toContain(CANARY.openai);
  });

  it('substitutes placeholders literally: several per value, no re-expansion, no $-patterns', () => {
    const yaml = ONE_RULE('      - { name: X-Pair, type: workspace_secret, value: "{A}:{B} {NOT-A-KEY} $1" }');
    const policy = policyFrom(
      yaml,
      new Map([
        ['A', '$&{B}'],
        ['B', 'FAKE-b'],
      ]),
    );
    expect(policy.rules[0]!.headers[0]!.value).toBe('$&{B}:FAKE-b {NOT-A-KEY} $1');
  });

  const keys = generateSealingKeys();
  const other = generateSealingKeys();
  const unsealer = new Unsealer(parsePrivateKey(keys.privatePem, 'sealing.key'));
  const opaque = (value: string) => ONE_RULE(`      - { name: Authorization, type: opaque, value: "${value}" }`);
  const PLAIN = 'Bearer sk-FAKE-opaque-canary-9999';
  /** Sealed as `authproxy seal --sandbox '*' --hosts api.openai.com` would: fit for ONE_RULE. */
  const FOR_RULE = { sandbox: '*', target: { hosts: ['api.openai.com'] } } as const;

  it('an opaque plaintext value is a config error that never echoes the value', () => {
    const err = thrown(() => policyFrom(opaque(PLAIN), new Map(), unsealer));
    expect(err.problems).toEqual([
      'rules[0].headers[0].value: rule "openai", header "Authorization": opaque values must be sealed ("sealed:..."); seal it with `authproxy seal`',
    ]);
    expect(err.message).not.toContain('FAKE-opaque-canary');
  });

  it('an opaque value without a sealing key is rejected', () => {
    const err = thrown(() =>
      policyFrom(opaque(seal(PLAIN, parsePublicKey(keys.publicPem, 'p'))), new Map(), undefined),
    );
    expect(err.problems).toEqual([
      'rules[0].headers[0].value: rule "openai", header "Authorization": opaque value needs a sealing key (--sealing-key)',
    ]);
  });

  it('an opaque value sealed to another key is rejected without echoing it', () => {
    const sealed = seal(PLAIN, parsePublicKey(other.publicPem, 'other.pub'), FOR_RULE);
    const err = thrown(() => policyFrom(opaque(sealed), new Map(), unsealer));
    expect(err.problems).toEqual([
      'rules[0].headers[0].value: rule "openai", header "Authorization": cannot be unsealed with this sealing key (sealed to another key, or corrupted)',
    ]);
    expect(err.message).not.toContain('FAKE-opaque-canary');
    expect(err.message).not.toContain(sealed);
  });

  it('an opaque value sealed to the right key is unsealed into the compiled header', () => {
    const policy = policyFrom(opaque(seal(PLAIN, parsePublicKey(keys.publicPem, 'p'), FOR_RULE)), new Map(), unsealer);
    expect(policy.rules[0]!.headers[0]).toEqual({ name: 'Authorization', value: PLAIN, sensitive: true });
    // The source keeps the sealed form, for reads.
    expect(policy.source.rules[0]!.headers![0]!.value.startsWith('sealed:')).toBe(true);
  });

  it('the shape-only unsealer accepts well-formed sealed values and still rejects plaintext', () => {
    const sealed = seal(PLAIN, parsePublicKey(other.publicPem, 'p'), FOR_RULE);
    expect(policyFrom(opaque(sealed), new Map(), SHAPE_ONLY_UNSEALER).rules[0]!.headers[0]!.value).toBe('');
    expect(thrown(() => policyFrom(opaque(PLAIN), new Map(), SHAPE_ONLY_UNSEALER)).code).toBe('config_invalid');
  });

  it('callback request headers are checked too, naming the callback', () => {
    const yaml = `callbacks:
  - match_hosts: ["api.example.com"]
    url: "https://tokens.internal.example/resolve"
    ttl_seconds: 300
    request_headers:
      - { name: X-Callback-Key, type: opaque, value: "${PLAIN}" }
`;
    const err = thrown(() => policyFrom(yaml, new Map(), unsealer));
    expect(err.problems).toEqual([
      'callbacks[0].request_headers[0].value: callback https://tokens.internal.example/resolve, header "X-Callback-Key": opaque values must be sealed ("sealed:..."); seal it with `authproxy seal`',
    ]);
    expect(err.message).not.toContain('FAKE-opaque-canary');
  });
});
