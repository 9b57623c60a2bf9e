import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { parsePublicKey, seal } from '../../src/secrets/sealing.js';
import { tempDir, type TempDir } from '../helpers/fs.js';

const CANARY_WS = 'canary-ws-5d1e';
const CANARY_OPAQUE = 'canary-opaque-a9c0';

describe('authproxy CLI', () => {
  let dir: TempDir;
  let sealed: string;

  beforeAll(() => {
    dir = tempDir();
    expect(runCli(['keys', 'init', '--dir', join(dir.path, 'keys')]).status).toBe(0);
    const seal = runCli(
      ['seal', '--public-key', join(dir.path, 'keys/sealing.pub'), '--sandbox', '*', '--hosts', 'github.com'],
      { input: `Basic ${CANARY_OPAQUE}\n` },
    );
    expect(seal.status).toBe(0);
    sealed = seal.stdout.trim();
    dir.dir('secrets');
    dir.file('secrets/TOKEN', `${CANARY_WS}\n`);
    dir.file(
      'config.yaml',
      `
rules:
  - name: github-api
    match_hosts: ["api.github.com"]
    match_paths: ["/user"]
    headers:
      - { name: Authorization, type: workspace_secret, value: "Bearer {TOKEN}" }
      - { name: X-Plain, type: plaintext, value: "visible" }
  - name: github-git
    match_hosts: ["github.com"]
    headers:
      - { name: Authorization, type: opaque, value: "${sealed}" }
`,
    );
  });
  afterAll(() => dir.cleanup());

  it('keys init writes private keys with mode 0600 and refuses to overwrite', () => {
    expect(statSync(join(dir.path, 'keys/sealing.key')).mode & 0o777).toBe(0o600);
    expect(statSync(join(dir.path, 'keys/signing.key')).mode & 0o777).toBe(0o600);
    expect(readFileSync(join(dir.path, 'keys/sealing.pub'), 'utf8')).toContain('BEGIN PUBLIC KEY');
    const again = runCli(['keys', 'init', '--dir', join(dir.path, 'keys')]);
    expect(again.status).not.toBe(0);
    expect(again.stderr).toContain('already exists');
  });

  it('seal prints a sealed value that never contains the secret', () => {
    expect(sealed).toMatch(/^sealed:[A-Za-z0-9_-]+$/);
    expect(sealed).not.toContain(CANARY_OPAQUE);
  });

  it('validate exits 0 for a valid config (opaque values checked for shape without the key)', () => {
    const r = runCli([
      'validate',
      '--config',
      join(dir.path, 'config.yaml'),
      '--secrets-dir',
      join(dir.path, 'secrets'),
    ]);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('valid (2 rules, 0 callbacks)');
  });

  it('seal needs a binding: --sandbox and one of --hosts, --provider or --callback-url', () => {
    const pub = join(dir.path, 'keys/sealing.pub');
    const none = runCli(['seal', '--public-key', pub], { input: CANARY_OPAQUE });
    expect(none.status).toBe(2);
    expect(none.stderr.trim().split('\n')).toEqual([
      "authproxy: --sandbox: required: the sandbox whose config may use the value, or '*' for any sandbox",
      'authproxy: --hosts, --provider or --callback-url: give exactly one (where the value may be sent)',
    ]);
    const badHost = runCli(['seal', '--public-key', pub, '--sandbox', 'sb-1', '--hosts', '*.com'], {
      input: CANARY_OPAQUE,
    });
    expect(badHost.status).toBe(2);
    expect(badHost.stderr).toContain('--hosts: "*.com" is too broad');
    expect(none.stderr + badHost.stderr).not.toContain(CANARY_OPAQUE);
  });

  it('validate refuses a sealed value moved to a rule for another host or sandbox, naming the field', () => {
    const moved = dir.file(
      'moved.yaml',
      `rules:\n  - name: elsewhere\n    match_hosts: ["evil.example.com"]\n    headers: [{ name: Authorization, type: opaque, value: "${sealed}" }]\n`,
    );
    const r = runCli(['validate', '--config', moved]);
    expect(r.status).toBe(1);
    expect(r.stderr.trim()).toBe(
      `authproxy: ${moved}: rules[0].headers[0].value: rule "elsewhere", header "Authorization": sealed value is bound to hosts github.com; "evil.example.com" is not among them`,
    );
    const forOne = runCli(
      ['seal', '--public-key', join(dir.path, 'keys/sealing.pub'), '--sandbox', 'sb-1', '--hosts', 'github.com'],
      { input: CANARY_OPAQUE },
    ).stdout.trim();
    const own = dir.file(
      'own.yaml',
      `rules:\n  - name: git\n    match_hosts: ["github.com"]\n    headers: [{ name: Authorization, type: opaque, value: "${forOne}" }]\n`,
    );
    expect(runCli(['validate', '--config', own, '--sandbox', 'sb-1']).status).toBe(0);
    const other = runCli(['validate', '--config', own, '--sandbox', 'sb-2']);
    expect(other.stderr).toContain('sealed value is bound to sandbox "sb-1", not "sb-2"');
  });

  it('an unbound sealed value is refused unless --allow-unbound-seals, which warns', () => {
    const unbound = seal(
      CANARY_OPAQUE,
      parsePublicKey(readFileSync(join(dir.path, 'keys/sealing.pub'), 'utf8'), 'pub'),
    );
    const file = dir.file(
      'unbound.yaml',
      `rules:\n  - name: git\n    match_hosts: ["github.com"]\n    headers: [{ name: Authorization, type: opaque, value: "${unbound}" }]\n`,
    );
    const refused = runCli(['validate', '--config', file]);
    expect(refused.status).toBe(1);
    expect(refused.stderr).toContain(
      'rules[0].headers[0].value: rule "git", header "Authorization": sealed value is not bound to a sandbox and hosts',
    );
    const allowed = runCli(['validate', '--config', file, '--allow-unbound-seals']);
    expect(allowed.status).toBe(0);
    expect(allowed.stderr.trim()).toBe(
      `authproxy: warning: ${file}: rules[0].headers[0].value: rule "git", header "Authorization": sealed value is not bound to a sandbox and hosts (accepted by --allow-unbound-seals)`,
    );
    expect(refused.stderr + allowed.stderr).not.toContain(CANARY_OPAQUE);
  });

  it('validate reads its flags from AUTHPROXY_* variables', () => {
    const r = runCli(['validate'], {
      env: { AUTHPROXY_CONFIG: join(dir.path, 'config.yaml'), AUTHPROXY_SECRETS_DIR: join(dir.path, 'secrets') },
    });
    expect(r.status).toBe(0);
  });

  it('validate prints one line per problem naming file and field, and no stack trace', () => {
    const bad = dir.file(
      'bad.yaml',
      'rules:\n  - name: x\n    match_hosts: ["*.com"]\n    headers: [{ name: "a b", type: plaintext, value: v }]\n',
    );
    const r = runCli(['validate', '--config', bad]);
    expect(r.status).toBe(1);
    const lines = r.stderr.trim().split('\n');
    expect(lines).toEqual([
      `authproxy: ${bad}: rules[0].match_hosts[0]: "*.com" is too broad: a wildcard needs a domain of at least two labels`,
      `authproxy: ${bad}: rules[0].headers[0].name: must be an HTTP header name (token characters only)`,
    ]);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it('validate rejects a plaintext opaque value and a missing secret by name', () => {
    const bad = dir.file(
      'bad2.yaml',
      `rules:\n  - name: x\n    match_hosts: ["a.example.com"]\n    headers:\n      - { name: A, type: opaque, value: "${CANARY_OPAQUE}" }\n      - { name: B, type: workspace_secret, value: "{NOPE}" }\n`,
    );
    const r = runCli(['validate', '--config', bad, '--secrets-dir', join(dir.path, 'secrets')]);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('rules[0].headers[0].value: rule "x", header "A": opaque values must be sealed');
    expect(r.stderr).toContain('rules[0].headers[1].value: rule "x", header "B": workspace secret "NOPE" is not set');
    expect(r.stderr).not.toContain(CANARY_OPAQUE);
  });

  it('validate with the wrong sealing key names the field', () => {
    runCli(['keys', 'init', '--dir', join(dir.path, 'other')]);
    const r = runCli([
      'validate',
      '--config',
      join(dir.path, 'config.yaml'),
      '--secrets-dir',
      join(dir.path, 'secrets'),
      '--sealing-key',
      join(dir.path, 'other/sealing.key'),
    ]);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(
      'rules[1].headers[0].value: rule "github-git", header "Authorization": cannot be unsealed',
    );
  });

  it('explain prints the decision with sensitive values redacted', () => {
    const r = runCli([
      'explain',
      '--config',
      join(dir.path, 'config.yaml'),
      '--secrets-dir',
      join(dir.path, 'secrets'),
      '--sealing-key',
      join(dir.path, 'keys/sealing.key'),
      'GET',
      'https://API.github.com./user?token=1',
    ]);
    expect(r.status).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out).toMatchObject({
      outcome: 'inject',
      rule: 'github-api',
      host: 'api.github.com',
      port: 443,
      path: '/user',
    });
    expect(out.set_headers).toEqual([
      { name: 'Authorization', value: '[redacted]' },
      { name: 'X-Plain', value: 'visible' },
    ]);
    const git = runCli([
      'explain',
      '--config',
      join(dir.path, 'config.yaml'),
      '--secrets-dir',
      join(dir.path, 'secrets'),
      '--sealing-key',
      join(dir.path, 'keys/sealing.key'),
      'GET',
      'https://github.com/o/r.git/info/refs',
    ]);
    expect(JSON.parse(git.stdout).set_headers).toEqual([{ name: 'Authorization', value: '[redacted]' }]);
    expect(r.stdout + git.stdout).not.toContain(CANARY_WS);
    expect(r.stdout + git.stdout).not.toContain(CANARY_OPAQUE);
  });

  it('explain shows refusals and pass reasons', () => {
    const r = runCli([
      'explain',
      '--config',
      join(dir.path, 'config.yaml'),
      '--secrets-dir',
      join(dir.path, 'secrets'),
      'GET',
      'http://api.github.com/user',
    ]);
    expect(JSON.parse(r.stdout)).toMatchObject({ outcome: 'refuse', status: 403, reason: 'cleartext' });
    const p = runCli([
      'explain',
      '--config',
      join(dir.path, 'config.yaml'),
      '--secrets-dir',
      join(dir.path, 'secrets'),
      'GET',
      'https://api.github.com/a%2Fb',
    ]);
    expect(JSON.parse(p.stdout)).toMatchObject({ outcome: 'pass', reason: 'ambiguous_path' });
  });

  it('jwks prints the public Ed25519 key', () => {
    const r = runCli(['jwks', '--signing-key', join(dir.path, 'keys/signing.key')]);
    const jwks = JSON.parse(r.stdout);
    expect(jwks.keys[0]).toMatchObject({ kty: 'OKP', crv: 'Ed25519', alg: 'EdDSA' });
    expect(jwks.keys[0].d).toBeUndefined();
  });

  it('schema prints a JSON Schema generated from the zod schema', () => {
    const schema = JSON.parse(runCli(['schema']).stdout);
    const kinds = schema.properties.rules.items.oneOf as Array<{
      required: string[];
      properties: { type?: { const?: string } };
    }>;
    // Header rules leave type out or write "" (as LangSmith's API gives them back).
    expect(kinds.map((k) => k.properties.type?.const || 'headers').sort()).toEqual([
      'aws',
      'azure',
      'gcp',
      'headers',
      'rewrite',
    ]);
    expect(kinds.find((k) => !k.properties.type?.const)!.required).toEqual(
      expect.arrayContaining(['name', 'match_hosts', 'headers']),
    );
    const rewrite = kinds.find((k) => k.properties.type?.const === 'rewrite')!;
    expect(rewrite.required).toEqual(expect.arrayContaining(['name', 'type', 'match_hosts', 'rewrite']));
    expect(rewrite.required).not.toContain('headers');
    expect(schema.properties.callbacks.items.properties.ttl_seconds).toMatchObject({ minimum: 60, maximum: 3600 });
    expect(schema.additionalProperties).toBe(false);
  });

  it('serve rejects a bad --listen with one line', () => {
    const r = runCli(['serve', '--config', join(dir.path, 'config.yaml'), '--listen', 'nonsense']);
    expect(r.status).toBe(2);
    expect(r.stderr.trim()).toBe('authproxy: --listen: "nonsense" must be host:port or unix:/path');
  });

  it('serve rejects a bad --tenant-id, --organization-id or --callback-issuer with one line naming the flag', () => {
    const serve = (...flags: string[]) =>
      runCli([
        'serve',
        '--config',
        join(dir.path, 'config.yaml'),
        '--listen',
        `unix:${join(dir.path, 'tenant.sock')}`,
        ...flags,
      ]);
    const tenant = serve('--tenant-id', 'a b');
    expect(tenant.status).toBe(2);
    expect(tenant.stderr.trim()).toBe('authproxy: --tenant-id: "a b" must be 1-128 characters of A-Z a-z 0-9 . _ : -');
    const org = runCli(
      ['serve', '--config', join(dir.path, 'config.yaml'), '--listen', `unix:${join(dir.path, 'tenant.sock')}`],
      { env: { AUTHPROXY_ORGANIZATION_ID: 'org/1' } },
    );
    expect(org.status).toBe(2);
    expect(org.stderr.trim()).toBe(
      'authproxy: --organization-id: "org/1" must be 1-128 characters of A-Z a-z 0-9 . _ : -',
    );
    const issuer = serve('--callback-issuer', '//');
    expect(issuer.status).toBe(2);
    expect(issuer.stderr.trim()).toBe('authproxy: --callback-issuer: must be a non-empty URL or name without spaces');
  });

  it('serve refuses a TCP --listen without mTLS unless --insecure-tcp is given', () => {
    const r = runCli(['serve', '--config', join(dir.path, 'config.yaml'), '--listen', '127.0.0.1:0']);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('--listen: a TCP listener needs mTLS');
  });

  it('serve stops, rather than half-starts, when the admin tokens file is missing', () => {
    const r = runCli([
      'serve',
      '--config',
      join(dir.path, 'config.yaml'),
      '--listen',
      `unix:${join(dir.path, 'half.sock')}`,
      '--redis',
      'redis://127.0.0.1:1',
      '--admin-listen',
      '127.0.0.1:0',
      '--admin-tokens',
      join(dir.path, 'missing-tokens'),
    ]);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('missing-tokens');
  });

  it('serve exits non-zero with field-named lines when the config is invalid', () => {
    const bad = dir.file('bad3.yaml', 'rules: 3\n');
    const r = runCli(['serve', '--config', bad, '--listen', '127.0.0.1:0', '--insecure-tcp']);
    expect(r.status).toBe(1);
    expect(r.stderr.trim()).toMatch(new RegExp(`^authproxy: ${bad}: rules: `));
  });
});
