import { chmodSync, existsSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { X509Certificate } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { initCaFiles, registerCaCommand } from '../../src/cli/ca-command.js';
import { AuthProxyError } from '../../src/errors.js';
import { CertificateAuthority } from '../../src/sds/ca.js';
import { runCli } from '../helpers/cli.js';
import { tempDir, type TempDir } from '../helpers/fs.js';
import { expectValidLeaf } from '../helpers/sds-certs.js';

const mode = (path: string) => statSync(path).mode & 0o777;
const builtMain = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));
/** The built CLI has `ca` once src/cli/main.ts registers it and dist/ is rebuilt (npm test does). */
const wired = existsSync(builtMain) && readFileSync(builtMain, 'utf8').includes('registerCaCommand');

describe('authproxy ca init', () => {
  let dir: TempDir;
  beforeEach(() => {
    dir = tempDir('authproxy-ca-init-');
  });
  afterEach(() => dir.cleanup());

  it('writes ca.crt (0644) and ca.key (0600) that load and mint verifiable leaves', async () => {
    const out = join(dir.path, 'new', 'ca');
    const files = await initCaFiles(out, { commonName: 'Acme sandbox CA' });
    expect(files).toEqual({ cert: join(out, 'ca.crt'), key: join(out, 'ca.key') });
    expect(mode(files.cert)).toBe(0o644);
    expect(mode(files.key)).toBe(0o600);
    const certPem = readFileSync(files.cert, 'utf8');
    expect(new X509Certificate(certPem).subject).toBe('CN=Acme sandbox CA');
    expect(new X509Certificate(certPem).ca).toBe(true);
    const ca = await CertificateAuthority.load(files.cert, files.key);
    const leaf = await ca.mintLeaf('api.example.com');
    expectValidLeaf(leaf.certificateChainPem, leaf.privateKeyPem, certPem, 'api.example.com');
  });

  it('refuses to overwrite an existing CA without --force, naming the file', async () => {
    const files = await initCaFiles(dir.path);
    const before = readFileSync(files.key, 'utf8');
    const err = await initCaFiles(dir.path).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AuthProxyError);
    expect((err as AuthProxyError).message).toBe(`${files.cert}: already exists (use --force to overwrite)`);
    expect(readFileSync(files.key, 'utf8')).toBe(before);
  });

  it('refuses when only the key is left over', async () => {
    const files = await initCaFiles(dir.path);
    rmSync(files.cert);
    await expect(initCaFiles(dir.path)).rejects.toThrow(`${files.key}: already exists`);
  });

  it('overwrites with force and restores the modes', async () => {
    const files = await initCaFiles(dir.path);
    const before = readFileSync(files.key, 'utf8');
    chmodSync(files.key, 0o644);
    await initCaFiles(dir.path, { force: true });
    expect(readFileSync(files.key, 'utf8')).not.toBe(before);
    expect(mode(files.key)).toBe(0o600);
  });

  it('runs as a commander command', async () => {
    const program = new Command('authproxy').exitOverride();
    registerCaCommand(program);
    const write = vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
    let printed: unknown[][];
    try {
      await program.parseAsync(['ca', 'init', '--dir', dir.path, '--common-name', 'Cmd CA'], { from: 'user' });
    } finally {
      printed = write.mock.calls.map((c) => [...c]);
      write.mockRestore();
    }
    expect(printed).toContainEqual([`wrote ${join(dir.path, 'ca.crt')}, ${join(dir.path, 'ca.key')}\n`]);
    expect(new X509Certificate(readFileSync(join(dir.path, 'ca.crt'))).subject).toBe('CN=Cmd CA');
  });

  it.skipIf(!wired)('works through the built CLI', () => {
    const first = runCli(['ca', 'init', '--dir', dir.path]);
    expect(first.status).toBe(0);
    expect(mode(join(dir.path, 'ca.key'))).toBe(0o600);
    const second = runCli(['ca', 'init', '--dir', dir.path]);
    expect(second.status).toBe(2);
    expect(second.stderr).toBe(`authproxy: ${join(dir.path, 'ca.crt')}: already exists (use --force to overwrite)\n`);
    expect(runCli(['ca', 'init', '--dir', dir.path, '--force']).status).toBe(0);
  });
});
