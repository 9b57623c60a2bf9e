/**
 * Regression tests for the bugs the fuzzers in test/fuzz/ found (one `it` each, named after the bug).
 */
import { describe, expect, it } from 'vitest';
import { parseAccessEntry } from '../../src/config/access-pattern.js';
import { parseConfigFile } from '../../src/config/file.js';
import { parseConfigText, validateConfig } from '../../src/config/load.js';
import { prepareConfig } from '../../src/admin/config-input.js';
import { normaliseAuthority } from '../../src/policy/host.js';
import { normalisePath } from '../../src/policy/path.js';
import { compilePathPattern } from '../../src/policy/path-pattern.js';
import { thrown } from './support.js';

const problems = (fn: () => unknown) => thrown(fn).problems;
const rule = (extra: Record<string, unknown> = {}) => ({
  name: 'r',
  match_hosts: ['a.example.com'],
  headers: [{ name: 'A', type: 'plaintext', value: 'v' }],
  ...extra,
});

describe('hostile input found by the fuzzers', () => {
  it('a YAML 1.1 !!omap / !!set / !!binary root is refused, not read as an empty config that drops access_control', () => {
    expect(problems(() => parseConfigText('!!omap\n- access_control: {allow_list: [a.example.com]}\n', 'F'))).toEqual([
      'F: (root): Invalid input: expected object, received array',
    ]);
    expect(problems(() => parseConfigText('!!set {rules, access_control}', 'F'))).toEqual([
      'F: rules: Invalid input: expected array, received null',
      'F: access_control: Invalid input: expected object, received null',
    ]);
    expect(problems(() => parseConfigText('!!binary aGVsbG8=', 'F'))).toEqual([
      'F: (root): Invalid input: expected object, received string',
    ]);
  });

  it('YAML library messages never quote the document (token source, alias names), and warnings are not printed', () => {
    const secret = 'sk-live-7Q3x-secret';
    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(w.message);
    process.on('warning', onWarning);
    try {
      for (const text of [
        `{*a}\n`,
        `a: *${secret}\n`,
        `a: 1\n"${secret}\\"x" b\n}`,
        `description: |x${secret}\n  y`,
        `? [${secret}, b]\n: c\n`,
      ]) {
        let lines: readonly string[] = [];
        try {
          parseConfigText(text, 'F');
        } catch (err) {
          lines = thrown(() => {
            throw err;
          }).problems;
        }
        for (const line of lines) expect(line).not.toContain(secret);
      }
    } finally {
      process.off('warning', onWarning);
    }
    expect(warnings.join('\n')).not.toContain(secret);
    expect(problems(() => parseConfigText('a: *nope\n', 'F'))).toEqual([
      'F: Unresolved alias (the anchor must be set before the alias)',
    ]);
  });

  it('an unrecognized key that looks like a token (digits, as in ghp_…) is not echoed', () => {
    const token = 'ghp_abcdefABCDEF1234567890abcdefABCDEF12';
    expect(problems(() => validateConfig({ rules: [rule({ [token]: 1 })] }, 'F'))).toEqual([
      'F: rules[0]: Unrecognized key: a key that is not a field name',
    ]);
    // Field-like typos are still named.
    expect(problems(() => validateConfig({ rules: [rule({ match_host: 1 })] }, 'F'))).toEqual([
      'F: rules[0]: Unrecognized key: "match_host"',
    ]);
  });

  it('the admin API does not echo an unrecognized key either (a mis-indented plaintext opaque value)', () => {
    const body = { rules: [{ ...rule(), headers: [{ name: 'A', type: 'opaque', 'sk live secret 123': null }] }] };
    const prepared = prepareConfig(body, { mode: 'put', sealPublicKey: undefined, sandboxId: 'sb-1' });
    expect(prepared.ok).toBe(false);
    expect(JSON.stringify(prepared)).not.toContain('sk live secret 123');
  });

  it('keys from the document with line breaks or control characters never split a problem line', () => {
    const lines = [
      ...problems(() => validateConfig({ rules: [rule({ env_vars: { 'A\nB': 'x' } })] }, 'F')),
      ...problems(() => parseConfigFile('sandboxes:\n  "bad\\nid": {}\n', 'F')),
      ...problems(() => parseConfigFile('sandboxes: {}\n"x\\ny": 1\n', 'F')),
    ];
    expect(lines).toEqual([
      'F: rules[0].env_vars.<key not shown>: Invalid key in record',
      'F: sandboxes.<key not shown>: sandbox ids are 1-128 characters of A-Z a-z 0-9 . _ : -',
      'F: (root): a key that is not a field name is not allowed beside "sandboxes"',
    ]);
    // A printable key is still shown.
    expect(problems(() => parseConfigFile('sandboxes:\n  bad id: {}\n', 'F'))).toEqual([
      'F: sandboxes.bad id: sandbox ids are 1-128 characters of A-Z a-z 0-9 . _ : -',
    ]);
  });

  it('rule names with control characters or line breaks are refused (they are echoed in problems, logs and audit lines)', () => {
    expect(problems(() => validateConfig({ rules: [rule({ name: 'a\nb' })] }, 'F'))).toContain(
      'F: rules[0].name: must not contain control characters or line breaks',
    );
    for (const line of problems(() =>
      validateConfig({ rules: [rule({ name: 'a\u0000' }), rule({ name: 'a\u0000' })] }, 'F'),
    ))
      expect(line).not.toMatch(/[\r\n\u0000]/);
  });

  it('host patterns and access entries are quoted with control characters escaped and cut to ~80 characters', () => {
    const lines = [
      ...problems(() => validateConfig({ rules: [rule({ match_hosts: ['a\u0000b.example.com'] })] }, 'F')),
      ...problems(() => validateConfig({ rules: [rule({ match_hosts: [`${'x'.repeat(5000)}.com:1`] })] }, 'F')),
      ...problems(() => validateConfig({ access_control: { deny_list: ['~(\n'] } }, 'F')),
    ];
    for (const line of lines) {
      expect(line).not.toMatch(/[\r\n\u0000]/);
      expect(line.length).toBeLessThan(300);
    }
    expect(lines[0]).toContain('"a\\u0000b.example.com"');
    const entry = parseAccessEntry(`~(\u0001`);
    expect(entry.ok ? '' : entry.problem).toContain('\\u0001');
  });

  it('header names have a bound (a 9,000-character name was accepted and echoed whole)', () => {
    const lines = problems(() =>
      validateConfig({ rules: [rule({ headers: [{ name: 'x'.repeat(9000), type: 'plaintext', value: 'v' }] })] }, 'F'),
    );
    expect(lines).toEqual(['F: rules[0].headers[0].name: is longer than 256 characters']);
  });

  it('a plaintext header value in the sealed form is held to the 8192-character limit (only opaque values are opened)', () => {
    const long = `sealed:${'A'.repeat(9000)}`;
    expect(
      problems(() =>
        validateConfig({ rules: [rule({ headers: [{ name: 'A', type: 'plaintext', value: long }] })] }, 'F'),
      ),
    ).toEqual(['F: rules[0].headers[0].value: is longer than 8192 characters']);
    expect(
      problems(() =>
        validateConfig(
          {
            callbacks: [
              {
                match_hosts: ['a.example.com'],
                url: 'https://t.example/',
                ttl_seconds: 60,
                request_headers: [{ name: 'A', type: 'plaintext', value: long }],
              },
            ],
          },
          'F',
        ),
      ),
    ).toEqual(['F: callbacks[0].request_headers[0].value: is longer than 8192 characters']);
    // An opaque value may be that long: what it opens to is checked when the config is applied.
    expect(() =>
      validateConfig({ rules: [rule({ headers: [{ name: 'A', type: 'opaque', value: long }] })] }, 'F'),
    ).not.toThrow();
  });

  it('a dot segment beside an empty segment is ambiguous: "/user//../repos/x" no longer matches /repos/*', () => {
    // RFC 3986 / WHATWG / Envoy's normalize_path read it as /user/repos/x; merging slashes first read /repos/x.
    expect(new URL('http://h/user//../repos/x').pathname).toBe('/user/repos/x');
    expect(normalisePath('/user//../repos/x')).toBeUndefined();
    expect(normalisePath('/repos/x//../../user')).toBeUndefined();
    expect(normalisePath('/a//./../b')).toBeUndefined();
    // Any dot segment beside an empty one is refused, even where today's readings happen to agree
    // (URL parsers differ on `//.x/.`: Node's gives `//.x/.`, RFC 3986 `//.x/`).
    expect(normalisePath('/a/..//b')).toBeUndefined();
    expect(normalisePath('//../a')).toBeUndefined();
    expect(normalisePath('//%2Euser/%2e')).toBeUndefined();
    expect(normalisePath('/repos//x/../y')).toBeUndefined();
    // Empty segments alone, and dot segments alone, are still normalised.
    expect(normalisePath('/repos//x/y')).toBe('/repos/x/y');
    expect(normalisePath('/repos/x/../y')).toBe('/repos/y');
    expect(compilePathPattern('/repos/*').test(normalisePath('/repos//x') ?? '')).toBe(true);
  });

  it('an authority outside printable ASCII names no host (toLowerCase folded the Kelvin sign into "k")', () => {
    expect(normaliseAuthority('\u212Aey.example.com', 'https')).toBeUndefined();
    expect(normaliseAuthority('api.github.com\u00a0', 'https')).toBeUndefined();
    expect(normaliseAuthority('key.example.com', 'https')).toEqual({ host: 'key.example.com', port: 443 });
  });
});
