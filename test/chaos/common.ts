/**
 * What the chaos steps share: the canary credentials, the proxy_config they run under, and the standard
 * environment (the sidecar rig with Redis and a callback server) with its load of 90 % static-rule and
 * 10 % callback requests.
 */
import { answer, startCallbackServer } from '../helpers/callback-server.js';
import { ChaosLoad } from './load.js';
import { startRig, type Rig, type RigOptions } from '../helpers/sidecar-rig.js';

/** Requests per second of every step's load (CHAOS_RATE, default 100). */
export const RATE = Number(process.env.CHAOS_RATE ?? 100);
/** The static rule's credential. */
export const STATIC = 'Bearer chaos_static_canary_51c0';
/** The static rule's credential after the config switch of config-invalid-then-valid. */
export const STATIC_NEXT = 'Token chaos_static_canary_51c0';
/** What the callback server answers for api.example.com. */
export const CALLBACK = 'Bearer chaos_callback_canary_7d2e';
/** Waits `ms` milliseconds. */
export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The proxy_config of the chaos runs: a static rule, a `full_request` callback, and `extra` YAML rules. */
export const config = (cbUrl: string, prefix = 'Bearer', extra = '') => `
rules:
  - name: github
    match_hosts: ["api.github.com"]
    headers: [{ name: Authorization, type: workspace_secret, value: "${prefix} {TOKEN}" }]
${extra}callbacks:
  - match_hosts: ["api.example.com"]
    url: "${cbUrl}"
    ttl_seconds: 60
    full_request: true
`;

/** A running chaos environment: the rig, the callback server and the static credentials allowed right now. */
export interface Env {
  rig: Rig;
  cb: Awaited<ReturnType<typeof startCallbackServer>>;
  allowedStatic: string[];
  /** Flags of the rig's `authproxy serve`, for a second replica started beside it. */
  readonly serveArgs: string[];
}

/** Starts the standard environment on `redisUrl`; `more` adds hosts, rules or Envoy YAML changes. */
export async function makeEnv(
  redisUrl: string,
  more: { hosts?: string[]; rules?: string; envoyYaml?: RigOptions['envoyYaml'] } = {},
): Promise<Env> {
  const cb = await startCallbackServer(answer({ Authorization: CALLBACK }));
  const serveArgs = ['--redis', redisUrl, '--callback-timeout-ms', '1000'];
  const rig = await startRig({
    hosts: ['api.github.com', 'api.example.com', ...(more.hosts ?? [])],
    secrets: { TOKEN: 'chaos_static_canary_51c0' },
    logLevel: 'warn',
    serveArgs,
    config: () => config(cb.url, 'Bearer', more.rules),
    envoyYaml: more.envoyYaml,
  });
  return { rig, cb, allowedStatic: [STATIC], serveArgs };
}

/** Stops the environment, including an Envoy that a step restarted. */
export async function closeEnv(env: Env): Promise<void> {
  // rig.stop() stops the Envoy it started; one restarted by the envoy-restart step is stopped here.
  const envoy = env.rig.envoy;
  await env.rig.stop().catch(() => undefined);
  await envoy.stop().catch(() => undefined);
  await env.cb.close();
}

/** The standard load on an environment: 9 static-rule requests to 1 callback request. */
export function standardLoad(env: Env): ChaosLoad {
  return new ChaosLoad(
    env.rig,
    [
      { host: 'api.github.com', weight: 9, allowed: () => env.allowedStatic },
      { host: 'api.example.com', weight: 1, allowed: () => [CALLBACK] },
    ],
    RATE,
  );
}
