/**
 * Transparent mode next to forward-proxy mode, through the same upstream: one namespace world (see
 * test/helpers/transparent-rig.ts) with both a transparent and a forward-mode Envoy in the sandbox, sharing
 * one authproxy; the load generator runs inside the sandbox, once through HTTPS_PROXY-style CONNECT and once
 * with no proxy at all (captured by the packet rules). Needs root and network namespaces.
 */
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { netnsUnavailable } from '../test/helpers/netns.js';
import { startTransparentRig, WORLD } from '../test/helpers/transparent-rig.js';
import { fmt, table } from './stats.js';

const CLIENT = fileURLToPath(new URL('./load-client.ts', import.meta.url));
const FORWARD_PORT = 10000;
const CONFIG = `
rules:
  - name: github-api
    match_hosts: ["api.github.com"]
    headers: [{ name: Authorization, type: workspace_secret, value: "Bearer {TOKEN}" }]
`;

/** The transparent-vs-forward table, or a line saying why it was skipped. */
export async function runTransparentBench(): Promise<string> {
  const why = netnsUnavailable();
  if (why) return `\nTransparent-mode benchmark skipped: ${why}`;
  const rig = await startTransparentRig({
    names: { 'api.github.com': WORLD.web },
    secrets: { TOKEN: 'bench-token' },
    config: () => CONFIG,
    logLevel: 'warn',
    forwardPort: FORWARD_PORT,
  });
  const rows: Array<Array<string | number>> = [];
  try {
    for (const inFlight of [1, 8]) {
      const total = inFlight === 1 ? 3000 : 6000;
      for (const mode of ['forward', 'transparent'] as const) {
        const spec = {
          url: 'https://api.github.com/user',
          total,
          inFlight,
          ca: join(rig.dir.path, 'keys/ca.crt'),
          ...(mode === 'forward' ? { proxy: `http://127.0.0.1:${FORWARD_PORT}` } : {}),
        };
        const r = await rig.client([process.execPath, '--import', 'tsx', CLIENT, JSON.stringify(spec)], {}, 300_000);
        if (r.code !== 0) throw new Error(`load client failed (${mode}): ${r.stderr.slice(-500)}`);
        const m = JSON.parse(r.stdout) as { rps: number; p50: number; p99: number };
        rows.push([
          inFlight,
          mode === 'forward' ? 'forward proxy (CONNECT)' : 'transparent (redirected)',
          fmt(m.rps),
          fmt(m.p50, 3),
          fmt(m.p99, 3),
        ]);
      }
    }
  } finally {
    await rig.stop();
  }
  return table(
    'HTTPS requests, TLS intercepted, credential injected, same upstream across a veth (client, Envoy, authproxy in the sandbox namespace)',
    ['in flight', 'mode', 'requests/s', 'p50 ms', 'p99 ms'],
    rows,
  );
}
