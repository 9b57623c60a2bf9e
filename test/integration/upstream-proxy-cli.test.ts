/**
 * `--upstream-proxy` / `--upstream-no-proxy` on the built CLI: envoy-config renders bootstraps that Envoy
 * itself accepts (forward and transparent, http and https proxies, and through AUTHPROXY_UPSTREAM_PROXY),
 * and bad values are one-line usage errors naming the flag, on every command that takes them.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { envoyBinary, freePort } from '../helpers/envoy.js';
import { tempDir } from '../helpers/fs.js';

const bin = envoyBinary();
const dir = tempDir('authproxy-upstream-cli-');
afterAll(() => dir.cleanup());

function envoyValidate(yaml: string): void {
  const file = join(dir.path, `e-${Math.random().toString(36).slice(2)}.yaml`);
  writeFileSync(file, yaml);
  execFileSync(bin!, ['--mode', 'validate', '-c', file, '--disable-hot-restart', '--log-level', 'error'], {
    encoding: 'utf8',
    stdio: 'pipe',
  });
}

describe('--upstream-proxy on the CLI', () => {
  it('up passes both flags on: authproxy logs the proxy, the rendered bootstrap sends egress through it', async () => {
    const state = join(dir.path, 'up-state');
    const examples = new URL('../../examples/', import.meta.url).pathname;
    // /bin/false as Envoy: up renders the bootstrap, starts authproxy, then stops when "Envoy" exits.
    const r = runCli([
      'up',
      '--config',
      `${examples}config.yaml`,
      '--secrets-dir',
      `${examples}secrets`,
      '--state-dir',
      state,
      '--envoy',
      '/bin/false',
      '--proxy-port',
      String(await freePort()),
      '--upstream-proxy',
      'http://proxy.corp.example:3128',
      '--upstream-no-proxy',
      'corp.internal',
    ]);
    expect(r.stderr).toContain(
      '"upstreamProxy":"http://proxy.corp.example:3128","noProxy":"corp.internal","msg":"egress goes through the upstream proxy"',
    );
    const yaml = readFileSync(join(state, 'envoy.yaml'), 'utf8');
    expect(yaml).toContain('name: upstream_proxy');
    expect(yaml).toContain('address: proxy.corp.example');
  });

  it.skipIf(!bin).each([
    [['--upstream-proxy', 'http://proxy.corp.example:3128'], {}],
    [['--upstream-proxy', 'https://proxy.corp.example:3129', '--mode', 'transparent'], {}],
    [['--mode', 'forward'], { AUTHPROXY_UPSTREAM_PROXY: 'http://10.0.0.5:8080' }],
  ])('envoy-config %j renders a bootstrap Envoy accepts', (args, env) => {
    const r = runCli(['envoy-config', ...args], { env });
    expect(r.stderr).toBe('');
    expect(r.stdout).toContain('name: upstream_proxy');
    expect(r.stdout).toContain('tunneling_config');
    envoyValidate(r.stdout);
  });

  it.each([
    [
      'envoy-config',
      ['--upstream-proxy', 'socks5://p:1080'],
      'authproxy: --upstream-proxy: scheme "socks5" must be http or https',
    ],
    [
      'envoy-config',
      ['--upstream-proxy', 'http://me:pw@p:3128'],
      'authproxy: --upstream-proxy: must not contain credentials (user:password@); authproxy does not authenticate to the proxy',
    ],
    [
      'envoy-config',
      ['--upstream-proxy', 'http://p'],
      'authproxy: --upstream-proxy: must name a port, like http://proxy.corp.example:3128',
    ],
    [
      'serve',
      ['--config', 'x.yaml', '--listen', 'unix:/tmp/x.sock', '--upstream-proxy', 'ftp://p:21'],
      'authproxy: --upstream-proxy: scheme "ftp" must be http or https',
    ],
    [
      'serve',
      ['--config', 'x.yaml', '--listen', 'unix:/tmp/x.sock', '--upstream-no-proxy', 'ok.example,10.0.0.0/99'],
      'authproxy: --upstream-no-proxy: "10.0.0.0/99" has a prefix length that is not 0..32',
    ],
    [
      'up',
      ['--config', 'x.yaml', '--upstream-no-proxy', 'bad entry'],
      'authproxy: --upstream-no-proxy: "bad entry" is not a host, .domain, host:port, IP, CIDR or *',
    ],
    [
      'up',
      ['--config', 'x.yaml', '--upstream-proxy', 'http://p:3128/x'],
      'authproxy: --upstream-proxy: must not have a path, query or fragment',
    ],
  ])('%s %j: one line naming the flag, exit 2', (command, args, line) => {
    const r = runCli([command, ...args]);
    expect(r.status).toBe(2);
    expect(r.stderr).toBe(`${line}\n`);
    expect(r.stderr).not.toContain('pw@');
  });
});
