/**
 * A TLS-inspecting corporate proxy behind `--upstream-proxy`: it answers Envoy's TLS to api.github.com with
 * a certificate from its own CA, which is the only CA in Envoy's `--ca-bundle`. Envoy accepts it through
 * the tunnel (the credential arrives, the proxy sees the request it decrypted); an origin certificate from
 * any other CA is refused (502), so the bundle alone decides what is trusted inside the tunnel.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseUpstreamProxy } from '../../src/egress/upstream-proxy.js';
import { envoyBinary } from '../helpers/envoy.js';
import { startForwardProxy, type ForwardProxy } from '../helpers/forward-proxy.js';
import { tempDir } from '../helpers/fs.js';
import { makePki } from '../helpers/pki.js';
import { startRig, type Rig } from '../helpers/sidecar-rig.js';

const run = promisify(execFile);
const TOKEN = 'ghp_inspected_canary_3e8b';
const HOSTS = ['api.github.com', 'uninspected.test'];
const bin = envoyBinary();

describe.skipIf(!bin)('a TLS-inspecting --upstream-proxy whose CA is in --ca-bundle', () => {
  const dir = tempDir('authproxy-inspect-');
  let rig: Rig;
  let proxy: ForwardProxy;

  beforeAll(async () => {
    const corp = await makePki(dir.path, 'corporate', ['api.github.com']);
    proxy = await startForwardProxy(Object.fromEntries(HOSTS.map((h) => [h, '127.0.0.1'])));
    const leaf = corp.leaves.get('api.github.com')!;
    proxy.inspect('api.github.com', leaf.cert, leaf.key);
    rig = await startRig({
      hosts: HOSTS,
      secrets: { GITHUB_TOKEN: TOKEN },
      dnsAnswer: () => '198.51.100.7',
      serveArgs: ['--upstream-proxy', proxy.url],
      bootstrap: { upstreamProxy: parseUpstreamProxy(proxy.url), caBundle: corp.caFile },
      config: () => `
rules:
  - name: github
    match_hosts: ["api.github.com", "uninspected.test"]
    headers: [{ name: Authorization, type: workspace_secret, value: "Bearer {GITHUB_TOKEN}" }]
`,
    });
  }, 60_000);
  afterAll(async () => {
    await rig?.stop();
    await proxy?.close();
    dir.cleanup();
  });

  const status = (host: string) =>
    run('curl', [
      '-sS',
      '-o',
      '/dev/null',
      '-w',
      '%{http_code}',
      '-x',
      rig.proxyUrl,
      '--cacert',
      rig.authproxyCa,
      '--max-time',
      '20',
      rig.url(host, '/user'),
    ]).then((r) => r.stdout);

  it("trusts the proxy's re-signed certificate through the tunnel", async () => {
    expect(await status('api.github.com')).toBe('200');
    expect(rig.upstream.received.at(-1)!.headers.authorization).toBe(`Bearer ${TOKEN}`);
    expect(proxy.lines).toContain('INSPECTED GET /user HTTP/1.1');
  });

  it('refuses an origin certificate from a CA the bundle does not hold', async () => {
    const before = rig.upstream.received.length;
    expect(await status('uninspected.test')).toBe('502');
    expect(rig.upstream.received.length).toBe(before);
  });
});
