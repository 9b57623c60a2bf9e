/**
 * Transparent mode with `--upstream-proxy`, in real network namespaces: redirected TLS, plain HTTP and raw
 * TCP all leave through a forward proxy in the world (test/helpers/forward-proxy.ts), which records each
 * request line — TLS as `CONNECT sni:port`, raw TCP as `CONNECT ip:port`, plain HTTP in absolute form.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { envoyBinary } from '../helpers/envoy.js';
import { eventually } from '../helpers/fs.js';
import { netnsUnavailable } from '../helpers/netns.js';
import { startTransparentRig, WORLD, type TransparentRig } from '../helpers/transparent-rig.js';

const TOKEN = 'ghp_transparent_proxy_canary_0a7c';
const NAMES = { 'api.github.com': WORLD.web, 'plain.example.test': WORLD.web, 'db.example.test': WORLD.db };
const unavailable =
  netnsUnavailable() ?? (envoyBinary() ? undefined : 'no Envoy binary (scripts/setup-deps.sh installs it)');
if (unavailable) console.warn(`SKIPPED transparent upstream-proxy e2e: ${unavailable}`);

describe.skipIf(Boolean(unavailable))('transparent capture through --upstream-proxy', () => {
  let rig: TransparentRig;
  beforeAll(async () => {
    rig = await startTransparentRig({
      names: NAMES,
      secrets: { GITHUB_TOKEN: TOKEN },
      upstreamProxy: true,
      config: () => `
rules:
  - name: github-api
    match_hosts: ["api.github.com"]
    headers: [{ name: Authorization, type: workspace_secret, value: "Bearer {GITHUB_TOKEN}" }]
access_control:
  allow_list: ["api.github.com", "plain.example.test", "db.example.test:5432"]
`,
    });
  }, 120_000);
  afterAll(async () => rig?.stop(), 60_000);

  it('TLS, plain HTTP and raw TCP leave through the proxy', async () => {
    const ca = { CURL_CA_BUNDLE: rig.bundle };
    const tls = await rig.client(['curl', '-sS', '-m', '8', 'https://api.github.com/user'], ca);
    expect(JSON.parse(tls.stdout)).toMatchObject({
      sni: 'api.github.com',
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    const plain = await rig.client(['curl', '-sS', '-m', '8', 'http://plain.example.test/p']);
    expect(JSON.parse(plain.stdout)).toMatchObject({ plain: true, host: 'plain.example.test' });
    const tcp = await rig.client([
      'timeout',
      '5',
      'bash',
      '-c',
      'exec 3<>/dev/tcp/db.example.test/5432 && echo ping >&3 && timeout 2 head -2 <&3',
    ]);
    expect(tcp.stdout).toBe(`echo ${WORLD.db}:5432\nping\n`);
    // The world reports the proxy's lines every 10 ms.
    const expected = ['CONNECT api.github.com:443', 'GET http://plain.example.test/p', `CONNECT ${WORLD.db}:5432`];
    await eventually(
      () => expected.every((l) => rig.proxyLines().includes(l)),
      5000,
      `the proxy to see ${expected.join(', ')} (saw ${rig.proxyLines().join(', ')})`,
    );
  });
});
