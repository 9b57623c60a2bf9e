/**
 * The sds-unavailable step: the interception certificates come from authproxy over SDS (on-demand, one
 * per SNI). Here Envoy's SDS source is a cluster of its own that reaches authproxy through a relay the
 * step takes down, while ext_proc keeps its direct path, so that only SDS is missing. Under the standard
 * load (known hosts, whose certificates Envoy already holds) a second load opens a TLS connection to a
 * host never seen before, 3 a second. While SDS is down those handshakes must fail closed: none completes
 * while SDS is down (Envoy holds them, then closes those held 10 s), nothing reaches the upstream without
 * its credential, known hosts keep being served; after SDS returns, new hosts are served again.
 */
import { join, dirname } from 'node:path';
import { readFileSync } from 'node:fs';
import { ProxyAgent, request } from 'undici';
import { parse, stringify } from 'yaml';
import type { LoadResult } from './load.js';
import { SocketRelay } from './relay.js';
import type { Rig } from '../helpers/sidecar-rig.js';
import { closeEnv, makeEnv, sleep, standardLoad, STATIC } from './common.js';
import { step, type Load } from './step.js';

const FRESH_RATE = 3;
/**
 * How long SDS stays down (CHAOS_SDS_OUTAGE_MS, default 12 s). Envoy holds a handshake that waits for its
 * certificate until the inner listener's transport_socket_connect_timeout (10 s) closes it: an outage
 * longer than that shows handshakes refused as well as held ones completed once SDS is back.
 */
const OUTAGE_MS = Number(process.env.CHAOS_SDS_OUTAGE_MS ?? 12_000);
const FRESH = Array.from({ length: 240 }, (_, i) => `n${i}.example.org`);
const FRESH_RULE = `  - name: fresh
    match_hosts: ["*.example.org"]
    headers: [{ name: Authorization, type: workspace_secret, value: "Bearer {TOKEN}" }]
`;

type Node = Record<string, unknown>;

/** Every object in `node` (depth first) that has `key`. */
function withKey(node: unknown, key: string, out: Node[] = []): Node[] {
  if (Array.isArray(node)) for (const n of node) withKey(n, key, out);
  else if (node && typeof node === 'object') {
    if (key in node) out.push(node as Node);
    for (const v of Object.values(node)) withKey(v, key, out);
  }
  return out;
}

/** Points the on-demand SDS source at a copy of the authproxy cluster whose endpoint is `relayPath`. */
function sdsViaRelay(yaml: string, onPaths: (authproxySocket: string, relaySocket: string) => void): string {
  const doc = parse(yaml) as { static_resources: { clusters: Node[] } };
  const clusters = doc.static_resources.clusters;
  const authproxy = clusters.find((c) => c.name === 'authproxy');
  const socket = withKey(authproxy, 'pipe')[0]?.pipe as { path: string } | undefined;
  const sources = withKey(doc, 'api_config_source').map(
    (n) => n.api_config_source as { grpc_services: Array<{ envoy_grpc: { cluster_name: string } }> },
  );
  if (!authproxy || !socket || sources.length === 0)
    throw new Error('no authproxy Unix-socket cluster or SDS source in the Envoy YAML');
  const relay = join(dirname(socket.path), 'sds-relay.sock');
  for (const s of sources) for (const g of s.grpc_services) g.envoy_grpc.cluster_name = 'authproxy_sds';
  const copy = JSON.parse(JSON.stringify(authproxy)) as Node;
  copy.name = 'authproxy_sds';
  (copy.load_assignment as Node).cluster_name = 'authproxy_sds';
  (withKey(copy, 'pipe')[0]!.pipe as { path: string }).path = relay;
  clusters.push(copy);
  onPaths(socket.path, relay);
  return stringify(doc, { aliasDuplicateObjects: false, lineWidth: 0 });
}

/** Requests to a new host each time (its own agent, so its own CONNECT and TLS handshake). */
class FreshHostLoad implements Load {
  readonly results: LoadResult[] = [];
  private next = 0;
  private timer?: NodeJS.Timeout;
  private readonly inflight = new Set<Promise<void>>();
  private readonly ca: string;

  constructor(private readonly rig: Rig) {
    this.ca = readFileSync(rig.authproxyCa, 'utf8');
  }

  start(): void {
    this.timer = setInterval(() => {
      const host = FRESH[this.next++];
      if (!host) return;
      const p = this.one(host).finally(() => this.inflight.delete(p));
      this.inflight.add(p);
    }, 1000 / FRESH_RATE);
  }

  private async one(host: string): Promise<void> {
    const sentAt = Date.now();
    const agent = new ProxyAgent({ uri: this.rig.proxyUrl, requestTls: { ca: this.ca }, connections: 1 });
    try {
      const res = await request(this.rig.url(host, '/fresh'), {
        dispatcher: agent,
        headersTimeout: 20_000,
        bodyTimeout: 20_000,
      });
      const body = await res.body.text();
      let auth: string | undefined;
      if (res.statusCode === 200)
        auth = (JSON.parse(body) as { headers: Record<string, string> }).headers.authorization;
      this.results.push({
        sentAt,
        doneAt: Date.now(),
        status: res.statusCode,
        bad: res.statusCode === 200 && auth !== STATIC,
        host,
        auth,
      });
    } catch {
      this.results.push({ sentAt, doneAt: Date.now(), status: 0, bad: false, host });
    } finally {
      await agent.close().catch(() => undefined);
    }
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await Promise.all(this.inflight);
  }
}

/** Runs the `sds-unavailable` step in its own environment on `redisUrl`. */
export async function sdsUnavailableStep(redisUrl: string): Promise<void> {
  let relay: SocketRelay | undefined;
  const env = await makeEnv(redisUrl, {
    hosts: FRESH,
    rules: FRESH_RULE,
    envoyYaml: (yaml) => sdsViaRelay(yaml, (target, path) => (relay = new SocketRelay(path, target))),
  });
  const known = standardLoad(env);
  try {
    let downAt = 0;
    known.start();
    await step(
      'sds-unavailable',
      new FreshHostLoad(env.rig),
      { mustRefuse: true, recoverWithinMs: 15_000 },
      async () => {
        await relay!.down();
        downAt = Date.now();
        await sleep(OUTAGE_MS);
        relay!.up();
      },
      (results, faultEnd) => {
        const why: string[] = [];
        const during = results.filter((r) => r.sentAt >= downAt + 100 && r.doneAt < faultEnd);
        const servedDuring = during.filter((r) => r.status === 200).length;
        // Nothing for a fresh host reached the upstream without its credential (no plaintext, no bare request).
        const fresh = new Set(FRESH);
        const bare = env.rig.upstream.received.filter(
          (r) => fresh.has(r.host.split(':')[0]!) && r.headers.authorization !== STATIC,
        ).length;
        console.log(
          `   while SDS was down: ${during.length} new-host requests answered, ${servedDuring} of them served; upstream saw ${bare} new-host requests without the credential`,
        );
        const knownBad = known.results.filter((r) => r.bad).length;
        console.log(
          `   known hosts meanwhile: ${known.results.length} requests, ${known.results.filter((r) => r.status !== 200).length} refused, ${knownBad} wrong credential`,
        );
        const held = results.filter((r) => r.sentAt >= downAt && r.sentAt < faultEnd);
        const line = (r: LoadResult) =>
          `${r.host.split('.')[0]} sent +${((r.sentAt - downAt) / 1000).toFixed(1)} s ${r.status || 'conn'} at +${((r.doneAt - downAt) / 1000).toFixed(1)} s`;
        console.log(
          `   new hosts sent while SDS was down (${held.length}), SDS down at +0 s, back at +${((faultEnd - downAt) / 1000).toFixed(1)} s: ${held.map(line).join('; ')}`,
        );
        if (knownBad > 0) why.push(`${knownBad} wrong credential on known hosts`);
        if (servedDuring > 0) why.push(`${servedDuring} new-host requests served while SDS was down`);
        if (bare > 0) why.push(`${bare} requests reached the upstream without the credential`);
        return why;
      },
    );
  } finally {
    await known.stop();
    await relay?.down();
    await closeEnv(env);
  }
}
