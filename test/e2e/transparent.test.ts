/**
 * Transparent mode end to end, in real network namespaces: the sandbox's clients (curl, git, Node's fetch,
 * bash's /dev/tcp, a UDP socket) run with no proxy variable at all; `authproxy sandbox-net --apply`
 * redirects their TCP to Envoy's transparent listener, which hands it to the forward proxy's decision.
 * The world's servers sit on documentation addresses that exist only inside the test's namespaces.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { envoyBinary } from '../helpers/envoy.js';
import { eventually } from '../helpers/fs.js';
import { netnsUnavailable } from '../helpers/netns.js';
import { startTransparentRig, WORLD, type TransparentRig } from '../helpers/transparent-rig.js';
import type { SealTo } from '../helpers/cli.js';

const TOKEN = 'ghp_transparent_canary_5d2e';
const GIT_TOKEN = 'ghs_transparent_git_canary_9b1f';
const GIT_BASIC = `Basic ${Buffer.from(`x-access-token:${GIT_TOKEN}`).toString('base64')}`;
const NAMES = {
  'api.github.com': WORLD.web,
  'github.com': WORLD.web,
  'tunnel.example.test': WORLD.web,
  'plain.example.test': WORLD.web,
  'moved.example.test': WORLD.web,
  'db.example.test': WORLD.db,
  'cache.example.test': WORLD.cache,
};

const unavailable =
  netnsUnavailable() ?? (envoyBinary() ? undefined : 'no Envoy binary (scripts/setup-deps.sh installs it)');
const inCi = process.env.CI === 'true';
if (unavailable && !inCi) console.warn(`SKIPPED transparent-mode e2e: ${unavailable}`);

const config = (seal: (s: string, to: SealTo) => string) => `
rules:
  - name: github-api
    match_hosts: ["api.github.com"]
    headers: [{ name: Authorization, type: workspace_secret, value: "Bearer {GITHUB_TOKEN}" }]
  - name: github-git
    match_hosts: ["github.com"]
    headers: [{ name: Authorization, type: opaque, value: "${seal(GIT_BASIC, { hosts: ['github.com'] })}" }]
  - name: moved
    type: rewrite
    match_hosts: ["moved.example.test"]
    rewrite: { host: api.github.com, port: 443 }
access_control:
  allow_list: ["moved.example.test", "api.github.com", "github.com", "tunnel.example.test", "plain.example.test", "db.example.test:5432", "${WORLD.web}", "${WORLD.cache}:6379"]
`;

// Registered only where it fails: in CI the prerequisites must be there (a skip would hide the suite).
if (unavailable && inCi) {
  describe('transparent mode prerequisites', () => {
    it('CI can create network namespaces and run Envoy', () => {
      throw new Error(`transparent-mode e2e cannot run in CI: ${unavailable}`);
    });
  });
}

describe.skipIf(Boolean(unavailable))('transparent capture in real network namespaces', () => {
  let rig: TransparentRig;
  let ca: Record<string, string>;
  /** A TCP exchange with bash's /dev/tcp: what came back, or nothing when the connection was closed. */
  const tcp = (host: string, port: number) =>
    rig.client([
      'timeout',
      '5',
      'bash',
      '-c',
      `exec 3<>/dev/tcp/${host}/${port} && echo ping >&3 && timeout 2 head -2 <&3`,
    ]);
  const udp = () =>
    rig.client([
      process.execPath,
      '-e',
      `const s=require('dgram').createSocket('udp4');s.on('message',(m)=>{process.stdout.write(String(m));process.exit(0)});s.send('ping',9999,'${WORLD.db}');setTimeout(()=>process.exit(3),1500)`,
    ]);
  const curl = async (args: string[], env = ca) => {
    const r = await rig.client(['curl', '-sS', '-m', '8', '-w', '\n%{http_code}', ...args], env);
    const cut = r.stdout.lastIndexOf('\n');
    return { code: r.code, status: Number(r.stdout.slice(cut + 1)), body: r.stdout.slice(0, cut), stderr: r.stderr };
  };
  const rules = async () =>
    (
      await Promise.all(
        [
          ['iptables', '-S'],
          ['iptables', '-t', 'nat', '-S'],
          ['ip6tables', '-S'],
        ].map((a) => rig.net.exec(rig.net.sandbox, a)),
      )
    )
      .map((r) => r.stdout)
      .join('');

  beforeAll(async () => {
    rig = await startTransparentRig({
      names: NAMES,
      config,
      secrets: { GITHUB_TOKEN: TOKEN },
      gitAuthorization: GIT_BASIC,
    });
    // The sandbox trusts authproxy's CA (and the world's roots) through the usual CA variables only.
    ca = {
      SSL_CERT_FILE: rig.bundle,
      CURL_CA_BUNDLE: rig.bundle,
      GIT_SSL_CAINFO: rig.bundle,
      NODE_EXTRA_CA_CERTS: rig.bundle,
    };
  }, 120_000);
  afterAll(async () => rig?.stop(), 60_000);

  it('curl to a credentialed host gets the credential injected, with no proxy variable', async () => {
    const r = await curl(['https://api.github.com/user']);
    expect(r.status).toBe(200);
    expect(JSON.parse(r.body)).toMatchObject({ sni: 'api.github.com', headers: { authorization: `Bearer ${TOKEN}` } });
  });

  it('a rewrite rule sends a captured request to its destination, checked and pinned like any other', async () => {
    const r = await curl(['-H', 'Authorization: Bearer sandbox-placeholder', 'https://moved.example.test/v1/x?y=1']);
    expect(r.status).toBe(200);
    const got = JSON.parse(r.body);
    expect(got).toMatchObject({ host: 'api.github.com', sni: 'api.github.com', path: '/v1/x?y=1' });
    expect(got.headers.authorization).toBeUndefined();
  });

  it('git clone over HTTPS works with the injected credential (GIT_SSL_CAINFO only)', async () => {
    const r = await rig.client(
      ['git', 'clone', '-q', 'https://github.com/org/repo.git', `${rig.dir.path}/home/clone`],
      { GIT_SSL_CAINFO: rig.bundle, GIT_TERMINAL_PROMPT: '0' },
      30_000,
    );
    expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: '' });
    const readme = await rig.client(['cat', `${rig.dir.path}/home/clone/README.md`]);
    expect(readme.stdout).toBe('hello through transparent capture\n');
  });

  it("Node's fetch gets the credential (NODE_EXTRA_CA_CERTS only)", async () => {
    const r = await rig.client(
      [
        process.execPath,
        '-e',
        "fetch('https://api.github.com/repos/x').then((r) => r.text()).then((t) => process.stdout.write(t), (e) => { console.error(e.cause ?? e); process.exit(1); })",
      ],
      {
        NODE_EXTRA_CA_CERTS: rig.bundle,
      },
    );
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).headers.authorization).toBe(`Bearer ${TOKEN}`);
  });

  it("tunnels an unmatched TLS host untouched: the client sees the server's own certificate", async () => {
    const own = await curl(['https://tunnel.example.test/t'], { CURL_CA_BUNDLE: rig.worldPki.caFile });
    expect(own.status).toBe(200);
    expect(JSON.parse(own.body)).toMatchObject({ sni: 'tunnel.example.test', path: '/t' });
    expect(JSON.parse(own.body).headers.authorization).toBeUndefined();
    // authproxy's CA alone does not verify it: no leaf was minted for this host.
    expect(
      (await curl(['https://tunnel.example.test/t'], { CURL_CA_BUNDLE: `${rig.dir.path}/keys/ca.crt` })).code,
    ).not.toBe(0);
  });

  it('a client that dials the upstream IP itself (no DNS) is still captured and injected', async () => {
    const asked = rig.dnsQueries().filter((q) => q === 'api.github.com').length;
    const r = await curl(['--resolve', `api.github.com:443:${WORLD.web}`, 'https://api.github.com/user']);
    expect(JSON.parse(r.body).headers.authorization).toBe(`Bearer ${TOKEN}`);
    expect(rig.dnsQueries().filter((q) => q === 'api.github.com').length).toBe(asked);
  });

  it('cleartext HTTP: a credentialed host is 403 without the credential, another host is forwarded', async () => {
    const refused = await curl(['http://api.github.com/user']);
    expect(refused).toMatchObject({ status: 403, body: 'credentials are only sent over https' });
    const plain = await curl(['http://plain.example.test/p']);
    expect(plain.status).toBe(200);
    expect(JSON.parse(plain.body)).toMatchObject({ plain: true, host: 'plain.example.test' });
    expect(JSON.parse(plain.body).headers['x-authproxy-original-dst']).toBeUndefined();
    // Only the forwarded request reached the world's plain-HTTP server (whose entries carry no SNI).
    await eventually(() => rig.received().some((r) => r.path === '/p'), 2000, 'the forwarded request');
    expect(
      rig
        .received()
        .filter((r) => r.sni === undefined)
        .map((r) => r.path),
    ).toEqual(['/p']);
  });

  it('HTTPS to an IP literal (no SNI) is dropped even though the IP is allow-listed', async () => {
    const before = rig.received().length;
    const r = await curl(['-k', `https://${WORLD.web}/`]);
    expect(r.code).not.toBe(0);
    expect(r.status).toBe(0);
    expect(rig.received().length).toBe(before);
  });

  it('raw TCP to an allowed host:port works; to one without a host:PORT entry the connection is closed', async () => {
    const ok = await tcp('db.example.test', 5432);
    expect(ok.stdout).toBe(`echo ${WORLD.db}:5432\nping\n`);
    // 198.51.100.8:6379 is allow-listed as an IP:port, but raw TCP to an IP literal opens nothing.
    const denied = await tcp('cache.example.test', 6379);
    expect(denied.stdout).toBe('');
    expect(denied.code).not.toBe(0);
  });

  it('UDP to the world is dropped', async () => {
    expect((await udp()).code).toBe(3);
  });

  it('never logs a credential', () => {
    expect(rig.authproxyOutput()).toContain('"phase":"capture_tls"');
    for (const out of [rig.authproxyOutput(), rig.envoyOutput()]) {
      expect(out).not.toContain(TOKEN);
      expect(out).not.toContain(GIT_TOKEN);
    }
  });

  it('applying the rules twice leaves the same rules', async () => {
    const once = await rules();
    expect(rig.sandboxNet('--apply', rig.net.sandbox).status).toBe(0);
    expect(await rules()).toBe(once);
    expect(once).toContain('REDIRECT --to-ports 15001');
  });

  it('sandbox-net --remove restores direct egress', async () => {
    const removed = rig.sandboxNet('--remove', rig.net.sandbox);
    expect(removed.stderr).toBe('');
    expect(await rules()).not.toContain('AUTHPROXY');
    // Straight to the server now: its own certificate, and no credential.
    const direct = await curl(['https://api.github.com/user'], { CURL_CA_BUNDLE: rig.worldPki.caFile });
    expect(direct.status).toBe(200);
    expect(JSON.parse(direct.body).headers.authorization).toBeUndefined();
    expect((await tcp('cache.example.test', 6379)).stdout).toBe(`echo ${WORLD.cache}:6379\nping\n`);
    expect((await udp()).stdout).toBe('ping');
    expect(rig.sandboxNet('--remove', rig.net.sandbox).status).toBe(0);
  });
});
