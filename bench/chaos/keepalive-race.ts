/**
 * `tsx bench/chaos/keepalive-race.ts [ROUNDS]`: looks for the soak's rare 503s. Bursts of 32 concurrent
 * requests through the sidecar, separated by gaps of about 6 s: Node 24's HTTPS server (the test
 * upstream) closes a keep-alive connection idle for 6 s (keepAliveTimeout 5 s + keepAliveTimeoutBuffer
 * 1 s), while Envoy keeps idle upstream connections for an hour, so a burst at the wrong instant is sent
 * on connections the upstream is closing: 503 UC upstream_reset_before_response_started{connection_termination}
 * (measured: 29 of 640 requests at RACE_GAP_MS=5920; 0 of 640 with RACE_IDLE_TIMEOUT=4s). Prints the statuses and Envoy's access-log lines of the failures (response flags, details).
 * RACE_IDLE_TIMEOUT=4s sets dfp_tls's upstream idle_timeout below the upstream's 5 s (the candidate fix).
 */
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { ProxyAgent, request } from 'undici';
import { parse, stringify } from 'yaml';
import { detailedAccessLog, failedAccessLines, failureStats, adminPortOf } from '../../test/helpers/chaos-envoy-log.js';
import { startRig } from '../../test/helpers/sidecar-rig.js';

const rounds = Number(process.argv[2] ?? 30);
const idle = process.env.RACE_IDLE_TIMEOUT;
/** Shortest gap between bursts (RACE_GAP_MS); each gap is 0-200 ms longer. */
const GAP_MS = Number(process.env.RACE_GAP_MS ?? 5920);
/** With RACE_IDLE_TIMEOUT: dfp_tls closes upstream connections idle that long, before the upstream does. */
const withIdleTimeout = (yaml: string): string => {
  if (!idle) return yaml;
  const doc = parse(yaml) as {
    static_resources: {
      clusters: Array<{ name: string; typed_extension_protocol_options: Record<string, Record<string, unknown>> }>;
    };
  };
  const dfp = doc.static_resources.clusters.find((c) => c.name === 'dfp_tls')!;
  Object.values(dfp.typed_extension_protocol_options)[0]!.common_http_protocol_options = { idle_timeout: idle };
  return stringify(doc, { aliasDuplicateObjects: false, lineWidth: 0 });
};
const rig = await startRig({
  hosts: ['api.github.com'],
  secrets: { TOKEN: 'race_canary' },
  logLevel: 'warn',
  envoyYaml: (yaml) => withIdleTimeout(detailedAccessLog(yaml)),
  config: () =>
    'rules:\n  - name: github\n    match_hosts: ["api.github.com"]\n    headers: [{ name: Authorization, type: workspace_secret, value: "Bearer {TOKEN}" }]\n',
});
const statuses: Record<string, number> = {};
try {
  const agent = new ProxyAgent({
    uri: rig.proxyUrl,
    requestTls: { ca: readFileSync(rig.authproxyCa, 'utf8') },
    connections: 32,
  });
  for (let i = 0; i < rounds; i++) {
    await Promise.all(
      Array.from({ length: 32 }, async (_, j) => {
        try {
          const res = await request(rig.url('api.github.com', `/race/${i}/${j}`), { dispatcher: agent });
          await res.body.text();
          statuses[res.statusCode] = (statuses[res.statusCode] ?? 0) + 1;
        } catch (err) {
          const k = (err as { code?: string }).code ?? 'error';
          statuses[k] = (statuses[k] ?? 0) + 1;
        }
      }),
    );
    await sleep(GAP_MS + (i % 11) * 20);
  }
  await agent.close();
  console.log(
    `statuses over ${rounds} bursts of 32${idle ? ` (dfp_tls idle_timeout ${idle})` : ''}: ${JSON.stringify(statuses)}`,
  );
  console.log(failedAccessLines(rig.envoy.output()).join('\n'));
  console.log(
    (await failureStats(adminPortOf(rig.dir.path)))
      .filter((l) => !/ext_proc\.stream|streams_|on_demand|sds\./.test(l))
      .join('\n'),
  );
} finally {
  await rig.stop();
}
