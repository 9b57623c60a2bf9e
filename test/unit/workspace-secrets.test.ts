import { mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { PLACEHOLDER, readSecretsDir, trimOneNewline } from '../../src/secrets/workspace.js';
import { thrown } from './support.js';

const ROOT = mkdtempSync(join(tmpdir(), 'authproxy-secrets-'));
afterAll(() => rmSync(ROOT, { recursive: true, force: true }));

let counter = 0;
/** A fresh directory laid out like a mounted Kubernetes Secret: `..TS/KEY`, `..data -> ..TS`, `KEY -> ..data/KEY`. */
function kubeSecretDir(files: Record<string, string>): string {
  const dir = join(ROOT, `mount-${counter++}`);
  mkdirSync(dir);
  writeVersion(dir, '..2024_01_01_00_00_00.000000001', files);
  symlinkSync('..2024_01_01_00_00_00.000000001', join(dir, '..data'));
  for (const key of Object.keys(files)) symlinkSync(join('..data', key), join(dir, key));
  return dir;
}

function writeVersion(dir: string, version: string, files: Record<string, string>): void {
  mkdirSync(join(dir, version));
  for (const [key, value] of Object.entries(files)) writeFileSync(join(dir, version, key), value);
}

describe('readSecretsDir', () => {
  it('reads a Kubernetes Secret mount through its symlinks, trimming one trailing newline', () => {
    const dir = kubeSecretDir({
      OPENAI_API_KEY: 'sk-FAKE-canary-0000\n',
      GITHUB_TOKEN: 'ghp_FAKEcanary\n\n',
      CRLF_KEY: 'FAKE-crlf\r\n',
      NO_NEWLINE: 'FAKE-plain',
      EMPTY: '',
      UNICODE_KEY: 'FAKE-pässwörd 🔑\n',
      _under_score1: 'FAKE-underscore\n',
    });
    expect(Object.fromEntries(readSecretsDir(dir))).toEqual({
      OPENAI_API_KEY: 'sk-FAKE-canary-0000',
      GITHUB_TOKEN: 'ghp_FAKEcanary\n',
      CRLF_KEY: 'FAKE-crlf',
      NO_NEWLINE: 'FAKE-plain',
      EMPTY: '',
      UNICODE_KEY: 'FAKE-pässwörd 🔑',
      _under_score1: 'FAKE-underscore',
    });
  });

  it('skips dotfiles, names that are not keys and directories', () => {
    const dir = kubeSecretDir({ GOOD: 'FAKE-good\n' });
    writeFileSync(join(dir, '.hidden'), 'FAKE-hidden');
    writeFileSync(join(dir, '.env'), 'FAKE-env');
    writeFileSync(join(dir, 'not-a-key'), 'FAKE-dash');
    writeFileSync(join(dir, '1STARTS_WITH_DIGIT'), 'FAKE-digit');
    writeFileSync(join(dir, 'key.txt'), 'FAKE-dot');
    mkdirSync(join(dir, 'SUBDIR'));
    writeFileSync(join(dir, 'SUBDIR', 'INNER'), 'FAKE-inner');
    expect([...readSecretsDir(dir).keys()]).toEqual(['GOOD']);
  });

  it('sees an atomic update once the ..data symlink is swapped', () => {
    const dir = kubeSecretDir({ TOKEN: 'FAKE-old\n' });
    expect(readSecretsDir(dir).get('TOKEN')).toBe('FAKE-old');
    writeVersion(dir, '..2024_01_02_00_00_00.000000002', { TOKEN: 'FAKE-new\n' });
    symlinkSync('..2024_01_02_00_00_00.000000002', join(dir, '..data_tmp'));
    renameSync(join(dir, '..data_tmp'), join(dir, '..data'));
    expect(readSecretsDir(dir).get('TOKEN')).toBe('FAKE-new');
  });

  it('reads plain files too, and an empty directory gives no secrets', () => {
    const dir = join(ROOT, 'plain');
    mkdirSync(dir);
    expect(readSecretsDir(dir).size).toBe(0);
    writeFileSync(join(dir, 'API_KEY'), 'FAKE-plain-file\n');
    expect(readSecretsDir(dir)).toEqual(new Map([['API_KEY', 'FAKE-plain-file']]));
  });

  it('a missing directory is a config_io error naming the directory', () => {
    const dir = join(ROOT, 'does-not-exist');
    const err = thrown(() => readSecretsDir(dir));
    expect(err.code).toBe('config_io');
    expect(err.message).toBe(`${dir}: cannot read secrets directory (ENOENT)`);
  });

  it('a file where the directory should be is a config_io error naming it', () => {
    const file = join(ROOT, 'a-file');
    writeFileSync(file, 'FAKE');
    expect(thrown(() => readSecretsDir(file)).message).toBe(`${file}: cannot read secrets directory (ENOTDIR)`);
  });

  it('a dangling key symlink is an error naming the key file, not its value', () => {
    const dir = kubeSecretDir({ PRESENT: 'FAKE-present-canary\n' });
    symlinkSync(join('..data', 'GONE'), join(dir, 'GONE'));
    const err = thrown(() => readSecretsDir(dir));
    expect(err.code).toBe('config_io');
    expect(err.message).toBe(`${join(dir, 'GONE')}: cannot read secret (ENOENT)`);
    expect(err.message).not.toContain('canary');
  });
});

describe('trimOneNewline', () => {
  it.each([
    ['a', 'a'],
    ['a\n', 'a'],
    ['a\n\n', 'a\n'],
    ['a\r\n', 'a'],
    ['a\r\n\r\n', 'a\r\n'],
    ['a\n\r\n', 'a\n'],
    ['a\r', 'a\r'],
    ['\n', ''],
    ['', ''],
    ['a\n ', 'a\n '],
    ['\na', '\na'],
  ])('%j -> %j', (input, expected) => {
    expect(trimOneNewline(input)).toBe(expected);
  });
});

describe('PLACEHOLDER', () => {
  it("finds {KEY} placeholders with the contract's KEY syntax", () => {
    const keys = (s: string) => [...s.matchAll(PLACEHOLDER)].map((m) => m[1]);
    expect(keys('Bearer {OPENAI_API_KEY}')).toEqual(['OPENAI_API_KEY']);
    expect(keys('{A}{_b1}:{C}')).toEqual(['A', '_b1', 'C']);
    expect(keys('{1A} {A-B} { A } {} {{X}}')).toEqual(['X']);
  });
});
