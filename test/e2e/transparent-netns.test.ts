/**
 * docs/transparent.md's namespace recipe, as the user runs it: scripts/transparent-netns.sh. The "host"
 * is a network namespace of the test's own (entered with nsenter, so the script's `ip netns add` is seen
 * by everyone) whose loopback holds the world: an HTTPS upstream and a DNS server on documentation
 * addresses. The script creates the sandbox namespace, its resolv.conf naming that DNS server, the CA,
 * serve and Envoy, and the rules; a process in the sandbox, as an unprivileged user with no proxy
 * variable, gets the credential. SIGTERM (and then --down) take everything away again.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { envoyBinary } from '../helpers/envoy.js';
import { eventually, tempDir, type TempDir } from '../helpers/fs.js';
import { netnsUnavailable } from '../helpers/netns.js';
import { makePki, type TestPki } from '../helpers/pki.js';
import type { WorldSpec } from '../helpers/world-main.js';

const REPO = fileURLToPath(new URL('../..', import.meta.url));
const SCRIPT = join(REPO, 'scripts/transparent-netns.sh');
const TOKEN = 'ghp_netns_recipe_canary_41c7';
const WEB = '203.0.113.10';
const DNS = '203.0.113.53';

const unavailable =
  netnsUnavailable() ?? (envoyBinary() ? undefined : 'no Envoy binary (scripts/setup-deps.sh installs it)');
const inCi = process.env.CI === 'true';
if (unavailable && !inCi) console.warn(`SKIPPED transparent-netns recipe e2e: ${unavailable}`);
if (unavailable && inCi) {
  describe('transparent-netns recipe prerequisites', () => {
    it('CI can create network namespaces and run Envoy', () => {
      throw new Error(`transparent-netns recipe e2e cannot run in CI: ${unavailable}`);
    });
  });
}

describe.skipIf(Boolean(unavailable))('scripts/transparent-netns.sh', () => {
  const id = randomBytes(3).toString('hex');
  const host = `aph-${id}`;
  const name = `t${id}`;
  const state = `/run/authproxy-netns/${name}`;
  let dir: TempDir;
  let pki: TestPki;
  let world: ChildProcess | undefined;
  let worldOut = '';
  let script: ChildProcess | undefined;
  let scriptOut = '';
  let scriptExit: Promise<number | null>;
  const ip = (...a: string[]) => {
    const r = spawnSync('ip', a, { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`ip ${a.join(' ')}: ${r.stderr}`);
  };
  const env = () => ({ PATH: process.env.PATH ?? '/usr/bin:/bin', ENVOY: envoyBinary()! });

  beforeAll(async () => {
    dir = tempDir('authproxy-recipe-');
    chmodSync(dir.path, 0o755);
    pki = await makePki(dir.path, 'world', ['api.github.com']);
    ip('netns', 'add', host);
    ip('-n', host, 'link', 'set', 'lo', 'up');
    for (const a of [WEB, DNS]) ip('-n', host, 'addr', 'add', `${a}/32`, 'dev', 'lo');
    const spec: WorldSpec = {
      https: { host: WEB, port: 443 },
      http: { host: WEB, port: 80 },
      pki: { caFile: pki.caFile, caPem: pki.caPem, leaves: Object.fromEntries(pki.leaves) },
      dns: { host: DNS, answers: { 'api.github.com': WEB } },
      tcpEcho: [],
      udpEcho: { host: WEB, port: 9999 },
    };
    world = spawn(
      'ip',
      [
        'netns',
        'exec',
        host,
        process.execPath,
        '--import',
        'tsx',
        join(REPO, 'test/helpers/world-main.ts'),
        dir.file('world.json', JSON.stringify(spec)),
      ],
      {
        env: { ...process.env, NODE_OPTIONS: '' },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    world.stdout!.on('data', (d: Buffer) => (worldOut += d.toString()));
    world.stderr!.on('data', (d: Buffer) => (worldOut += d.toString()));
    await eventually(() => worldOut.includes('READY'), 30_000, 'the world servers');

    const config = dir.file(
      'config.yaml',
      'rules:\n  - name: github-api\n    match_hosts: ["api.github.com"]\n    headers: [{ name: Authorization, type: workspace_secret, value: "Bearer {GITHUB_TOKEN}" }]\n',
    );
    dir.dir('secrets');
    dir.file('secrets/GITHUB_TOKEN', `${TOKEN}\n`);
    chmodSync(join(dir.path, 'secrets'), 0o755);
    // The host's side: in the test's namespace, but the same mount namespace (nsenter --net only).
    script = spawn(
      'nsenter',
      [
        `--net=/run/netns/${host}`,
        '--',
        'bash',
        SCRIPT,
        '--name',
        name,
        '--config',
        config,
        '--secrets-dir',
        join(dir.path, 'secrets'),
        '--dns',
        DNS,
        '--upstream-ca',
        pki.caFile,
        '--host-ip',
        '192.0.2.1',
        '--sandbox-ip',
        '192.0.2.2',
      ],
      { env: env(), stdio: ['ignore', 'pipe', 'pipe'] },
    );
    script.stdout!.on('data', (d: Buffer) => (scriptOut += d.toString()));
    script.stderr!.on('data', (d: Buffer) => (scriptOut += d.toString()));
    scriptExit = new Promise((r) => script!.on('exit', (code) => r(code)));
    await eventually(
      () => {
        if (script!.exitCode !== null) throw new Error(`transparent-netns.sh exited: ${scriptOut}`);
        return scriptOut.includes('READY');
      },
      60_000,
      'the script to be ready',
    );
  }, 120_000);

  afterAll(async () => {
    if (script && script.exitCode === null) {
      script.kill('SIGTERM');
      await Promise.race([scriptExit, new Promise((r) => setTimeout(r, 10_000))]);
    }
    spawnSync('bash', [SCRIPT, '--down', '--name', name], { env: env() });
    world?.kill('SIGKILL');
    for (const pid of spawnSync('ip', ['netns', 'pids', host], { encoding: 'utf8' })
      .stdout?.split('\n')
      .filter(Boolean) ?? [])
      spawnSync('kill', ['-9', pid]);
    spawnSync('ip', ['netns', 'del', host]);
    dir?.cleanup();
  }, 30_000);

  it('a process in the namespace, with no proxy variable, gets the credential through transparent capture', async () => {
    const r = spawnSync(
      'ip',
      [
        'netns',
        'exec',
        name,
        'setpriv',
        '--reuid=65534',
        '--regid=65534',
        '--clear-groups',
        '--',
        'curl',
        '-sS',
        '-m',
        '10',
        'https://api.github.com/user',
      ],
      // The sandbox's resolver is /etc/netns/NAME/resolv.conf (the world's DNS), its trust the script's bundle.
      {
        env: { PATH: process.env.PATH ?? '/usr/bin:/bin', CURL_CA_BUNDLE: `${state}/ca-bundle.pem` },
        encoding: 'utf8',
      },
    );
    expect(r.stderr).toBe('');
    expect(JSON.parse(r.stdout)).toMatchObject({
      sni: 'api.github.com',
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    await eventually(() => worldOut.includes('DNS api.github.com'), 2000, "the namespace's resolver to be asked");
    expect(scriptOut).not.toContain(TOKEN);
  });

  it("the rules let DNS through only to the namespace's resolver", () => {
    const r = spawnSync('ip', ['netns', 'exec', name, 'iptables', '-S', 'AUTHPROXY_OUTPUT'], { encoding: 'utf8' });
    expect(r.stdout).toContain(`-d ${DNS}/32 -p udp -m udp --dport 53 -j RETURN`);
  });

  it('SIGTERM tears down the namespace, its resolv.conf and the state; --down then finds nothing left', async () => {
    script!.kill('SIGTERM');
    expect(await scriptExit).not.toBe(0);
    expect(spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout).not.toContain(name);
    expect(existsSync(`/etc/netns/${name}`)).toBe(false);
    expect(existsSync(state)).toBe(false);
    expect(existsSync('/run/authproxy-netns')).toBe(false);
    const down = spawnSync('bash', [SCRIPT, '--down', '--name', name], { env: env(), encoding: 'utf8' });
    expect({ status: down.status, stdout: down.stdout }).toEqual({
      status: 0,
      stdout: `transparent-netns: ${name} torn down\n`,
    });
  });
});
