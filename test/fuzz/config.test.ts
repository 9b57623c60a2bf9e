/**
 * Property tests of the config parser and compiler: random YAML/JSON documents, and mutations of valid
 * configs (test/fixtures/valid/* plus a seed holding every kind of secret-bearing value) at the object
 * level and at the text level. For every input:
 * - parsing and compiling either succeed or throw an AuthProxyError `config_invalid` with problems (never
 *   another exception type);
 * - a compiled policy is whole: every enabled rule and every callback is in it, every header value is a
 *   valid header value (nothing half-applied);
 * - every problem is one line that names a field path (or, for YAML syntax, a line);
 * - no problem ever contains a planted canary: canaries sit in every secret-bearing value (header values,
 *   opaque values, provider Secrets, workspace secret contents) and in the mutations of them.
 */
import { generateKeyPairSync } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { stringify as yamlStringify } from 'yaml';
import { compilePolicy } from '../../src/config/compile.js';
import { compileFile, parseConfigFile } from '../../src/config/file.js';
import { parseYamlText, validateConfig } from '../../src/config/load.js';
import { headerValueProblem, type ProxyConfig } from '../../src/config/schema.js';
import { isProviderRule } from '../../src/config/provider-schema.js';
import { AuthProxyError } from '../../src/errors.js';
import type { CompiledPolicy } from '../../src/policy/compiled.js';
import { generateSealingKeys, parsePrivateKey, seal, Unsealer } from '../../src/secrets/sealing.js';
import { CANARY_MARK, fuzz, fuzzTimeout, hostileString, hostileValue } from '../helpers/fuzz.js';

const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'valid');
const SOURCE = 'FUZZ';

const keys = generateSealingKeys();
const unsealer = new Unsealer(parsePrivateKey(keys.privatePem, 'fuzz key'));
const publicKey = unsealer.publicKey();

/** Canaries: each contains CANARY_MARK and digits (so that it never looks like a field name). */
const C = {
  token: 'tok-cnry-7Q3x-0001',
  plain: 'plain-cnry-7Q3x-0002',
  opaque: 'opq-cnry-7Q3x-0003',
  callback: 'cbk-cnry-7Q3x-0004',
  awsId: 'AKIACNRY7Q3X00000005',
  awsSecret: 'aws/cnry+7Q3x/0006',
  gcpEmail: 'svc-cnry-7Q3x-0007@example.iam.gserviceaccount.com',
} as const;
const rsa = generateKeyPairSync('rsa', { modulusLength: 1024 })
  .privateKey.export({ type: 'pkcs8', format: 'pem' })
  .toString();
const gcpKey = JSON.stringify({
  type: 'service_account',
  client_email: C.gcpEmail,
  private_key: rsa,
  token_uri: 'https://oauth2.googleapis.com/token',
  private_key_id: 'kid-cnry-0008',
});

/** Workspace secrets, with canary contents. */
const SECRETS = new Map<string, string>([
  ['TOKEN', C.token],
  ['OPENAI_API_KEY', `sk-${C.token}`],
  ['ANTHROPIC_API_KEY', `ant-${C.token}`],
  ['GITHUB_TOKEN', `ghp-${C.token}`],
  ['GITHUB_GIT_BASIC', `basic-${C.token}`],
  ['AWS_ID', C.awsId],
  ['GCP_KEY', gcpKey],
]);

/** A valid config holding every kind of secret-bearing value. */
const RICH = {
  description: 'every secret-bearing field',
  rules: [
    {
      name: 'hdr',
      match_hosts: ['api.example.com', '*.example.org'],
      match_paths: ['/v1/*', '/user'],
      headers: [
        { name: 'Authorization', type: 'workspace_secret', value: 'Bearer {TOKEN}' },
        {
          name: 'X-Opaque',
          type: 'opaque',
          value: seal(C.opaque, publicKey, { sandbox: '*', target: { hosts: ['api.example.com', '*.example.org'] } }),
        },
        { name: 'X-Plain', type: 'plaintext', value: C.plain },
      ],
      env_vars: { TOKEN_ENV: 'proxy-injected' },
    },
    {
      name: 'off',
      enabled: false,
      match_hosts: ['off.example.com'],
      headers: [
        {
          name: 'X-Off',
          type: 'opaque',
          value: seal(`off-${C.opaque}`, publicKey, { sandbox: '*', target: { hosts: ['off.example.com'] } }),
        },
      ],
    },
    {
      name: 'aws',
      type: 'aws',
      aws: {
        access_key_id: { type: 'workspace_secret', value: '{AWS_ID}' },
        secret_access_key: {
          type: 'opaque',
          value: seal(C.awsSecret, publicKey, { sandbox: '*', target: { provider: 'aws' } }),
        },
      },
    },
    {
      name: 'gcp',
      type: 'gcp',
      gcp: {
        service_account_json: { type: 'workspace_secret', value: '{GCP_KEY}' },
        scopes: ['https://www.googleapis.com/auth/cloud-platform'],
      },
    },
  ],
  callbacks: [
    {
      match_hosts: ['cb.example.com'],
      url: 'https://tokens.example/resolve?k=v',
      ttl_seconds: 60,
      request_headers: [
        {
          name: 'X-Key',
          type: 'opaque',
          value: seal(C.callback, publicKey, { sandbox: '*', target: { callback: 'https://tokens.example' } }),
        },
        { name: 'X-Plain', type: 'plaintext', value: C.plain },
      ],
    },
  ],
  access_control: { deny_list: ['evil.example.com', '~^bad\\.', '10.0.0.0/8', '[::1]:22'] },
  no_proxy: ['localhost', '[::1]'],
};

const SEEDS: unknown[] = [
  RICH,
  { sandboxes: { 'sb-1': RICH, 'sb-2': { rules: [], tenant_id: 'acme' } } },
  ...readdirSync(FIXTURES)
    .filter((f) => /\.(ya?ml|json)$/.test(f))
    .sort()
    .map((f) => parseYamlText(readFileSync(join(FIXTURES, f), 'utf8'), f)),
];

/** Every secret-bearing string the seeds hold (canaries, their sealed forms): none may reach a problem line. */
const PLANTED: string[] = [...Object.values(C), ...SECRETS.values(), ...sealedValues(SEEDS)];
function sealedValues(value: unknown): string[] {
  if (typeof value === 'string') return value.startsWith('sealed:') ? [value] : [];
  if (Array.isArray(value)) return value.flatMap(sealedValues);
  if (value && typeof value === 'object') return Object.values(value).flatMap(sealedValues);
  return [];
}

/** `(root)`, or a field path such as `rules[0].headers[1].value`, `sandboxes.sb-1.rules[0]`, `access_control`. */
const FIELD = /^(?:\(root\)|[A-Za-z_][A-Za-z_-]*(?:\[\d+\]|\.<key not shown>|\.[^\s:]+|\.[\x20-\x7e]+?)*): /;

/** Checks one thrown value: an AuthProxyError with one-line, field-named, canary-free problems. */
function expectConfigError(err: unknown, opts: { prefix: string; lines?: boolean }): void {
  if (!(err instanceof AuthProxyError))
    throw new Error(`unexpected exception type: ${err instanceof Error ? `${err.name}: ${err.message}` : String(err)}`);
  expect(err.code).toBe('config_invalid');
  expect(err.problems.length).toBeGreaterThan(0);
  expect(err.message).toBe(err.problems.join('; '));
  for (const problem of err.problems) {
    expect(problem, 'one line').not.toMatch(/[\r\n\u0000]/);
    expect(problem.length, 'bounded').toBeLessThan(1024);
    expect(problem.startsWith(opts.prefix), problem).toBe(true);
    const rest = problem.slice(opts.prefix.length);
    // YAML syntax errors name a line; document-level ones (an alias bomb, an unknown alias) are one fixed sentence.
    // (The YAML library's own sentence may start with a symbol: "line 1: %YAML directive should contain ...".)
    const named =
      FIELD.test(rest) || (opts.lines === true && (/^line \d+: \S.*$/.test(rest) || /^[A-Z].*$/.test(rest)));
    expect(named, `names a field: ${problem}`).toBe(true);
    expect(problem.toLowerCase(), `no planted value: ${problem}`).not.toContain(CANARY_MARK);
    for (const planted of PLANTED) expect(problem).not.toContain(planted);
  }
}

/** A compiled policy holds the whole config: every enabled header rule, every callback, valid header values. */
function expectWhole(policy: CompiledPolicy, config: ProxyConfig): void {
  const enabled = config.rules.filter((r) => !isProviderRule(r) && r.enabled);
  expect(policy.rules.map((r) => r.name)).toEqual(enabled.map((r) => r.name));
  expect(policy.callbacks).toHaveLength(config.callbacks.length);
  for (const rule of policy.rules) for (const h of rule.headers) expect(headerValueProblem(h.value)).toBeUndefined();
  for (const cb of policy.callbacks)
    for (const h of cb.requestHeaders) expect(headerValueProblem(h.value)).toBeUndefined();
  expect(policy.aws !== undefined).toBe(config.rules.some((r) => r.type === 'aws' && r.enabled));
  expect(policy.gcp !== undefined).toBe(config.rules.some((r) => r.type === 'gcp' && r.enabled));
  expect(policy.source).toBe(config);
}

const ctxFor = (secrets: ReadonlyMap<string, string>) => ({ secrets, unsealer });

/** Validates and compiles an already-parsed document; returns which stage it reached. */
function evaluateValue(
  doc: unknown,
  secrets: ReadonlyMap<string, string> = SECRETS,
): 'invalid' | 'rejected' | 'compiled' {
  let config: ProxyConfig;
  try {
    config = validateConfig(doc, SOURCE);
  } catch (err) {
    expectConfigError(err, { prefix: `${SOURCE}: ` });
    return 'invalid';
  }
  let policy: CompiledPolicy;
  try {
    policy = compilePolicy(config, ctxFor(secrets));
  } catch (err) {
    expectConfigError(err, { prefix: '' });
    return 'rejected';
  }
  expectWhole(policy, config);
  return 'compiled';
}

/** Parses and compiles a config file's text (a top-level config or a `sandboxes:` map), all or nothing. */
function evaluateText(
  text: string,
  secrets: ReadonlyMap<string, string> = SECRETS,
): 'invalid' | 'rejected' | 'compiled' {
  let file: ReturnType<typeof parseConfigFile>;
  try {
    file = parseConfigFile(text, SOURCE);
  } catch (err) {
    expectConfigError(err, { prefix: `${SOURCE}: `, lines: true });
    return 'invalid';
  }
  let compiled: ReturnType<typeof compileFile>;
  try {
    compiled = compileFile(file, ctxFor(secrets), SOURCE);
  } catch (err) {
    expectConfigError(err, { prefix: `${SOURCE}: ` });
    return 'rejected';
  }
  expect(compiled.default !== undefined).toBe(file.default !== undefined);
  if (compiled.default) expectWhole(compiled.default, file.default!);
  expect([...compiled.sandboxes.keys()]).toEqual([...file.sandboxes.keys()]);
  for (const [id, policy] of compiled.sandboxes) expectWhole(policy, file.sandboxes.get(id)!);
  return 'compiled';
}

// ---- mutations of parsed documents ----

type Path = ReadonlyArray<string | number>;
type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Every path in a document (root included), depth first. */
function paths(value: unknown, at: Path = []): Path[] {
  const out: Path[] = [at];
  if (Array.isArray(value)) value.forEach((v, i) => out.push(...paths(v, [...at, i])));
  else if (isObj(value)) for (const [k, v] of Object.entries(value)) out.push(...paths(v, [...at, k]));
  return out;
}
function get(root: unknown, path: Path): unknown {
  let at = root;
  for (const p of path) at = (at as Record<string | number, unknown>)[p];
  return at;
}

/** Ways to damage a secret-bearing value; each keeps the canary inside the value (or where a value was). */
const valueDamage: ReadonlyArray<(v: string) => unknown> = [
  (v) => `${v}\r\n`,
  (v) => `${v}\u0000`,
  (v) => `${v}\nX-Injected: 1`,
  (v) => v.repeat(Math.ceil(9000 / Math.max(1, v.length))),
  (v) => v.slice(0, Math.floor(v.length / 2)),
  (v) => `sealed:${v}`,
  (v) => `sealed:${Buffer.from(v).toString('base64url')}`,
  (v) => `${v}{NOT_SET}`,
  (v) => `{${v}`,
  (v) => v.replace(/[{}]/g, ''),
  (v) => `${v.slice(0, -4)}AAAA`,
  () =>
    seal(`${C.opaque}\r\nX: y`, publicKey, { sandbox: '*', target: { hosts: ['api.example.com', '*.example.org'] } }),
  () => seal(C.opaque.repeat(600), publicKey, { sandbox: '*', target: { hosts: ['api.example.com'] } }),
  () => seal(C.opaque, publicKey, { sandbox: 'sb-other', target: { hosts: ['api.example.com'] } }),
  () => seal(C.opaque, publicKey, { sandbox: '*', target: { hosts: ['elsewhere.example.net'] } }),
  () => seal(C.opaque, publicKey, { sandbox: '*', target: { provider: 'gcp' } }),
  () => seal(C.opaque, publicKey),
  (v) => [v],
  (v) => ({ value: v }),
  (v) => (Number.isNaN(Number(v)) ? v.length : Number(v)),
];

/** What a mutation does; indexes are taken modulo the number of candidates. */
type Mutation =
  | { op: 'replace'; at: number; value: unknown }
  | { op: 'delete'; at: number }
  | { op: 'insert'; at: number; key: string; value: unknown }
  | { op: 'duplicate'; at: number }
  | { op: 'damage'; at: number; how: number }
  | { op: 'type'; at: number; type: string }
  | { op: 'valueToKey'; at: number }
  | { op: 'rename'; at: number; name: string };

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ op: fc.constant('replace' as const), at: fc.nat(), value: hostileValue }),
  fc.record({ op: fc.constant('delete' as const), at: fc.nat() }),
  fc.record({
    op: fc.constant('insert' as const),
    at: fc.nat(),
    key: fc.oneof(
      hostileString,
      fc.constantFrom(
        'name',
        'type',
        'value',
        'enabled',
        'match_hosts',
        'match_paths',
        'headers',
        'aws',
        'gcp',
        'is_set',
        'tenant_id',
        'sandboxes',
        'allow_list',
        'deny_list',
      ),
    ),
    value: hostileValue,
  }),
  fc.record({ op: fc.constant('duplicate' as const), at: fc.nat() }),
  { weight: 3, arbitrary: fc.record({ op: fc.constant('damage' as const), at: fc.nat(), how: fc.nat() }) },
  fc.record({
    op: fc.constant('type' as const),
    at: fc.nat(),
    type: fc.constantFrom('plaintext', 'workspace_secret', 'opaque', 'aws', 'gcp', 'OPAQUE', ''),
  }),
  fc.record({ op: fc.constant('valueToKey' as const), at: fc.nat() }),
  fc.record({ op: fc.constant('rename' as const), at: fc.nat(), name: hostileString }),
);

/** Objects that hold a secret-bearing `value` (headers, Secrets). */
const valueHolders = (doc: unknown) =>
  paths(doc).filter((p) => isObj(get(doc, p)) && typeof (get(doc, p) as Obj).value === 'string');

function applyMutation(doc: unknown, m: Mutation): unknown {
  const all = paths(doc);
  const pick = <T>(list: readonly T[], i: number): T | undefined =>
    list.length === 0 ? undefined : list[i % list.length];
  const setAt = (path: Path, value: unknown): unknown => {
    if (path.length === 0) return value;
    const parent = get(doc, path.slice(0, -1)) as Record<string | number, unknown>;
    parent[path[path.length - 1]!] = value;
    return doc;
  };
  switch (m.op) {
    case 'replace':
      return setAt(pick(all, m.at)!, m.value);
    case 'delete': {
      const path = pick(
        all.filter((p) => p.length > 0),
        m.at,
      );
      if (!path) return doc;
      const parent = get(doc, path.slice(0, -1));
      if (Array.isArray(parent)) parent.splice(path[path.length - 1] as number, 1);
      else delete (parent as Obj)[path[path.length - 1] as string];
      return doc;
    }
    case 'insert': {
      const path = pick(
        all.filter((p) => isObj(get(doc, p))),
        m.at,
      );
      if (path) (get(doc, path) as Obj)[m.key] = m.value;
      return doc;
    }
    case 'duplicate': {
      const path = pick(
        all.filter((p) => Array.isArray(get(doc, p)) && (get(doc, p) as unknown[]).length > 0),
        m.at,
      );
      if (path) {
        const list = get(doc, path) as unknown[];
        list.push(structuredClone(list[m.at % list.length]));
      }
      return doc;
    }
    case 'damage': {
      const path = pick(valueHolders(doc), m.at);
      if (path) {
        const holder = get(doc, path) as Obj;
        holder.value = valueDamage[m.how % valueDamage.length]!(holder.value as string);
      }
      return doc;
    }
    case 'type': {
      const path = pick(
        all.filter((p) => isObj(get(doc, p)) && 'type' in (get(doc, p) as Obj)),
        m.at,
      );
      if (path) (get(doc, path) as Obj).type = m.type;
      return doc;
    }
    case 'rename': {
      // A rule (or header) named with anything at all: names are echoed in problems, so they must stay one line.
      const path = pick(
        all.filter((p) => isObj(get(doc, p)) && typeof (get(doc, p) as Obj).name === 'string'),
        m.at,
      );
      if (path) (get(doc, path) as Obj).name = m.name;
      return doc;
    }
    case 'valueToKey': {
      // A mis-indented value: it becomes a key of the object that held it.
      const path = pick(valueHolders(doc), m.at);
      if (path) {
        const holder = get(doc, path) as Obj;
        const value = holder.value as string;
        delete holder.value;
        holder[value] = null;
      }
      return doc;
    }
  }
}

const mutatedDoc = fc
  .tuple(fc.nat({ max: SEEDS.length - 1 }), fc.array(mutation, { minLength: 1, maxLength: 4 }))
  .map(([seed, ms]) => ms.reduce((doc, m) => applyMutation(doc, m), structuredClone(SEEDS[seed])));

/** Workspace secrets with damaged contents (CR/LF, empty, bad JSON for the GCP key, a wrong key type). */
const damagedSecrets = fc.option(
  fc.tuple(fc.constantFrom(...SECRETS.keys()), fc.nat()).map(([key, how]) => {
    const value = SECRETS.get(key)!;
    const damaged = [
      `${value}\r\n`,
      '',
      `${value}\u0000`,
      value.slice(0, 10),
      `{"client_email": "${C.gcpEmail}", "private_key": "${C.token}"}`,
      ` ${value} `,
      value.toLowerCase(),
    ][how % 7]!;
    return new Map([...SECRETS, [key, damaged]]);
  }),
  { nil: SECRETS },
);

// ---- text-level mutations ----

const YAML_NOISE = [
  ':',
  ': ',
  '-',
  '- ',
  '[',
  ']',
  '{',
  '}',
  ',',
  '"',
  "'",
  '\n',
  '\n  ',
  ' ',
  '  ',
  '\t',
  '#',
  '&a ',
  '*a',
  '!',
  '!!binary ',
  '!!set ',
  '!!omap ',
  '|',
  '>',
  '%YAML 1.1\n',
  '@',
  '`',
  '? ',
  '<<: ',
  '---\n',
  '...\n',
  '\\',
  '\u0000',
  '\ufeff',
  '\u2028',
];
type TextOp = { at: number; del: number; insert: string } | { line: number; op: 'dup' | 'drop' | 'indent' | 'dedent' };
const textOp: fc.Arbitrary<TextOp> = fc.oneof(
  fc.record({
    at: fc.nat(),
    del: fc.nat({ max: 8 }),
    insert: fc.oneof(fc.constantFrom(...YAML_NOISE), fc.constant(''), hostileString),
  }),
  fc.record({
    line: fc.nat(),
    op: fc.constantFrom('dup' as const, 'drop' as const, 'indent' as const, 'dedent' as const),
  }),
);
function applyTextOp(text: string, op: TextOp): string {
  if ('at' in op) {
    const at = op.at % (text.length + 1);
    return text.slice(0, at) + op.insert + text.slice(at + op.del);
  }
  const lines = text.split('\n');
  const i = op.line % lines.length;
  if (op.op === 'dup') lines.splice(i, 0, lines[i]!);
  else if (op.op === 'drop') lines.splice(i, 1);
  else if (op.op === 'indent') lines[i] = `  ${lines[i]}`;
  else lines[i] = lines[i]!.replace(/^ {1,2}/, '');
  return lines.join('\n');
}
const seedTexts = SEEDS.map((s) => yamlStringify(s, { lineWidth: 0 }));
const mutatedText = fc
  .tuple(fc.nat({ max: seedTexts.length - 1 }), fc.array(textOp, { minLength: 1, maxLength: 5 }))
  .map(([seed, ops]) => ops.reduce(applyTextOp, seedTexts[seed]!));

// ---- random documents ----

/** Documents shaped like a config: known field names with random values, nested a few levels. */
const FIELD_NAMES = [
  'rules',
  'callbacks',
  'access_control',
  'no_proxy',
  'description',
  'sandboxes',
  'name',
  'enabled',
  'match_hosts',
  'match_paths',
  'headers',
  'env_vars',
  'type',
  'value',
  'aws',
  'gcp',
  'url',
  'ttl_seconds',
  'request_headers',
  'full_request',
  'allow_list',
  'deny_list',
  'role_arn',
  'session_tags',
  'access_key_id',
  'secret_access_key',
  'service_account_json',
  'scopes',
  'tenant_id',
  'organization_id',
];
const configShaped: fc.Arbitrary<unknown> = fc.letrec((tie) => ({
  node: fc.oneof(
    { depthSize: 'small' },
    hostileValue,
    fc.dictionary(fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...FIELD_NAMES) }, hostileString), tie('node'), {
      maxKeys: 6,
    }),
    fc.array(tie('node'), { maxLength: 3 }),
  ),
})).node;

describe('config parser and compiler, fuzzed', () => {
  it('the seeds themselves compile', () => {
    for (const seed of SEEDS) expect(['compiled']).toContain(evaluateText(yamlStringify(seed)));
    expect(evaluateValue(RICH)).toBe('compiled');
  });

  it(
    'random documents (config-shaped values, JSON text, YAML text, raw text)',
    async () => {
      await fuzz(
        'config: random documents',
        300,
        fc.property(
          fc.oneof(
            configShaped.map((doc) => ({ kind: 'value' as const, doc })),
            configShaped.map((doc) => ({ kind: 'text' as const, text: JSON.stringify(doc) ?? 'null' })),
            configShaped.map((doc) => ({ kind: 'text' as const, text: yamlStringify(doc) })),
            fc.string({ unit: 'binary', maxLength: 200 }).map((text) => ({ kind: 'text' as const, text })),
            fc
              .array(fc.constantFrom(...YAML_NOISE, 'rules', 'name', 'a', '1', 'sandboxes'), { maxLength: 40 })
              .map((parts) => ({ kind: 'text' as const, text: parts.join('') })),
          ),
          (input) => {
            if (input.kind === 'value') evaluateValue(input.doc);
            else evaluateText(input.text);
          },
        ),
      );
    },
    fuzzTimeout(6000),
  );

  it(
    'mutations of valid configs: whole or refused, field-named problems, no planted value echoed',
    async () => {
      const seen = { invalid: 0, rejected: 0, compiled: 0 };
      await fuzz(
        'config: mutated documents',
        300,
        fc.property(mutatedDoc, damagedSecrets, fc.boolean(), (doc, secrets, asText) => {
          seen[
            asText
              ? evaluateText(yamlStringify(doc, { lineWidth: 0 }), secrets)
              : isObj(doc) && 'sandboxes' in doc
                ? evaluateText(JSON.stringify(doc), secrets)
                : evaluateValue(doc, secrets)
          ] += 1;
        }),
      );
      // The mutations reach every stage: some configs stay valid, some fail validation, some fail compilation.
      expect(seen.invalid).toBeGreaterThan(0);
      expect(seen.compiled + seen.rejected).toBeGreaterThan(0);
    },
    fuzzTimeout(8000),
  );

  it(
    'text-level mutations of valid configs (YAML syntax damage)',
    async () => {
      await fuzz(
        'config: mutated YAML text',
        400,
        fc.property(mutatedText, (text) => void evaluateText(text)),
      );
    },
    fuzzTimeout(6000),
  );
});
