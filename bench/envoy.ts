/**
 * Added latency of authproxy per request through a real Envoy sidecar: the same rig measured twice, once
 * as deployed and once with the inner ext_proc filter removed (the CONNECT decision and TLS interception
 * stay, so the difference is the per-request ext_proc round trip). Requests reuse one proxied tunnel, as
 * a client with keep-alive does.
 */
import { readFileSync } from 'node:fs';
import { parse, stringify } from 'yaml';
import { ProxyAgent, request } from 'undici';
import { envoyBinary } from '../test/helpers/envoy.js';
import { startRig } from '../test/helpers/sidecar-rig.js';
import { fmt, loadTest, table } from './stats.js';
import { runTransparentBench } from './transparent.js';

const CONFIG = `
rules:
  - name: github-api
    match_hosts: ["api.github.com"]
    headers: [{ name: Authorization, type: workspace_secret, value: "Bearer {TOKEN}" }]
`;

/** Drops the inner listener's ext_proc filter: the "same Envoy without the ext_proc filter". */
function withoutInjection(yaml: string): string {
  const doc = parse(yaml);
  const hcm = doc.static_resources.listeners[1].filter_chains[0].filters[0].typed_config;
  hcm.http_filters = hcm.http_filters.filter((f: { name: string }) => f.name !== 'envoy.filters.http.ext_proc');
  return stringify(doc, { lineWidth: 0 });
}

async function measure(baseline: boolean, total: number, inFlight: number) {
  const rig = await startRig({ hosts: ['api.github.com'], secrets: { TOKEN: 'bench-token' }, config: () => CONFIG, logLevel: 'warn', envoyYaml: baseline ? withoutInjection : undefined });
  const dispatcher = new ProxyAgent({ uri: rig.proxyUrl, requestTls: { ca: readFileSync(rig.authproxyCa, 'utf8') }, connections: inFlight });
  const target = rig.url("api.github.com", "/user");
  const one = async () => {
    const res = await request(target, { dispatcher });
    const body = await res.body.text();
    if (res.statusCode !== 200) throw new Error(`status ${res.statusCode}: ${body.slice(0, 200)}`);
  };
  try {
    return await loadTest(one, total, inFlight);
  } finally {
    await dispatcher.close();
    await rig.stop();
  }
}

export async function runEnvoyBench(): Promise<string> {
  if (!envoyBinary()) return '\nEnvoy benchmark skipped: no Envoy binary (bash scripts/setup-deps.sh installs it)';
  const rows: Array<Array<string | number>> = [];
  for (const inFlight of [1, 8]) {
    const total = inFlight === 1 ? 3000 : 6000;
    const base = await measure(true, total, inFlight);
    const full = await measure(false, total, inFlight);
    rows.push([inFlight, 'Envoy without ext_proc', fmt(base.rps), fmt(base.p50, 3), fmt(base.p99, 3), '']);
    rows.push([inFlight, 'Envoy + authproxy', fmt(full.rps), fmt(full.p50, 3), fmt(full.p99, 3), `+${fmt(full.p50 - base.p50, 3)} / +${fmt(full.p99 - base.p99, 3)}`]);
  }
  const forward = table('HTTPS requests through the Envoy sidecar (TLS intercepted, keep-alive tunnel, loopback upstream)', ['in flight', 'setup', 'requests/s', 'p50 ms', 'p99 ms', 'added p50 / p99 ms'], rows);
  return forward + (await runTransparentBench());
}
