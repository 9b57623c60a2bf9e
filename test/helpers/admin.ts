/**
 * A real admin API for tests: a real redis-server, a RedisSandboxStore on it, a real PolicyRegistry (with
 * workspace secrets and an Unsealer), a tokens file on disk, and the fastify server on a free port of
 * 127.0.0.1. `call` sends one request with a chosen token; `logs` holds every line the API wrote.
 */
import { writeFileSync } from 'node:fs';
import { startAdminServer, type AdminServer } from '../../src/admin/server.js';
import { AdminTokens } from '../../src/admin/tokens.js';
import { createRedisClient, type RedisClient } from '../../src/callbacks/redis-url.js';
import { compilePolicy } from '../../src/config/compile.js';
import { validateConfig } from '../../src/config/load.js';
import type { CompiledPolicy } from '../../src/policy/compiled.js';
import { PolicyRegistry } from '../../src/sandboxes/registry.js';
import { RedisSandboxStore } from '../../src/sandboxes/store.js';
import type { SandboxIdentity } from '../../src/contracts/identity.js';
import { generateSealingKeys, parsePrivateKey, Unsealer } from '../../src/secrets/sealing.js';
import { tempDir, type TempDir } from './fs.js';
import { captureLogs } from './logs.js';
import { startRedis, type RedisServer } from './redis.js';

/** Tokens written to the tokens file: one for every sandbox, one scoped to `team-*` and `sb-solo`. */
export const ADMIN_TOKEN = 'admin-token-0123456789abcdef';
export const SCOPED_TOKEN = 'scoped-token-0123456789abcdef';

export interface AdminRigOptions {
  /** Workspace secrets the registry resolves `{KEY}` against. */
  readonly secrets?: Record<string, string>;
  /** Sandbox ids the "mounted config file" defines (the API must answer 409 for writes). */
  readonly fileSandboxes?: readonly string[];
  /** Operator allow-list for callback URLs. */
  readonly callbackAllow?: readonly string[];
  /** Without a sealing key, the API refuses plaintext opaque values. */
  readonly noSealingKey?: boolean;
  readonly bodyLimitBytes?: number;
  /** The serve defaults (`--tenant-id`, `--organization-id`) given to the registry and the API. */
  readonly defaultIdentity?: SandboxIdentity;
  /** `--gcp-token-uri-allow` of the registry (the API's apply-time check). */
  readonly gcpTokenUriAllow?: readonly string[];
  /** The API's bound on receiving a whole request (headers and body); the default is the server's. */
  readonly requestTimeoutMs?: number;
  /** Keep sandbox links and addresses (the link routes are served); `allowLoopback` as `--egress-allow-cidrs 127.0.0.0/8` would. */
  readonly links?: { readonly allowLoopback?: boolean };
}

export interface AdminRig {
  readonly url: string;
  readonly unsealer: Unsealer;
  readonly store: RedisSandboxStore;
  /** The registry the API checks configs with; `start()` it to follow the store like a serving replica. */
  readonly registry: PolicyRegistry;
  readonly redis: RedisClient;
  readonly tokensFile: string;
  readonly logs: ReturnType<typeof captureLogs>;
  /** One request; `token: null` sends no Authorization header; `raw` sends the body text as is. */
  call(
    method: string,
    path: string,
    opts?: {
      token?: string | null;
      body?: unknown;
      raw?: string;
      contentType?: string;
      headers?: Record<string, string>;
    },
  ): Promise<Reply>;
  /** The raw value Redis holds for a sandbox (what a dump of Redis would reveal). */
  rawStored(id: string): Promise<string>;
  close(): Promise<void>;
}

export interface Reply {
  readonly status: number;
  readonly headers: Headers;
  readonly text: string;
  /** Parsed JSON body (undefined when the body is empty). */
  readonly json: any;
}

function emptyPolicy(ctxSecrets: ReadonlyMap<string, string>, unsealer: Unsealer): CompiledPolicy {
  return compilePolicy(validateConfig({}, 'file'), { secrets: ctxSecrets, unsealer });
}

export async function startAdminRig(opts: AdminRigOptions = {}): Promise<AdminRig> {
  const dir: TempDir = tempDir('authproxy-admin-');
  const redisServer: RedisServer = await startRedis();
  const redis = createRedisClient(redisServer.url, { commandTimeoutMs: 2000, connectTimeoutMs: 2000 });
  const prefix = 'test:';
  const store = new RedisSandboxStore(redis, prefix);
  const keys = generateSealingKeys();
  const unsealer = new Unsealer(parsePrivateKey(keys.privatePem, 'test key'));
  const logs = captureLogs('debug');
  const secrets = new Map(Object.entries(opts.secrets ?? {}));
  const sandboxes = new Map((opts.fileSandboxes ?? []).map((id) => [id, emptyPolicy(secrets, unsealer)]));
  const registry = new PolicyRegistry(
    { file: { default: undefined, sandboxes }, secrets, fingerprint: '' },
    unsealer,
    logs.log,
    store,
    opts.defaultIdentity,
    {
      gcpTokenUriAllow: opts.gcpTokenUriAllow,
      ...(opts.links ? { linkStore: store.linkStore(), allowLoopback: () => opts.links?.allowLoopback ?? false } : {}),
    },
  );
  const tokensFile = dir.file(
    'admin-tokens',
    `# admin tokens\n${ADMIN_TOKEN}\n\n${SCOPED_TOKEN} team-*,sb-solo  # team scope\n`,
  );
  const tokens = await AdminTokens.fromFile(tokensFile, logs.log);
  let server: AdminServer;
  try {
    if (redis.status !== 'ready') await new Promise((resolve) => redis.once('ready', resolve));
    server = await startAdminServer({
      listen: '127.0.0.1:0',
      tokens,
      store,
      registry,
      sealPublicKey: opts.noSealingKey ? undefined : unsealer.publicKey(),
      log: logs.log,
      callbackPolicy: opts.callbackAllow ? { allow: opts.callbackAllow } : undefined,
      bodyLimitBytes: opts.bodyLimitBytes,
      requestTimeoutMs: opts.requestTimeoutMs,
      defaultIdentity: opts.defaultIdentity,
    });
  } catch (err) {
    redis.disconnect();
    await redisServer.close();
    throw err;
  }
  const url = `http://${server.address}`;
  return {
    url,
    unsealer,
    store,
    registry,
    redis,
    tokensFile,
    logs,
    async call(method, path, o = {}) {
      const headers: Record<string, string> = { ...o.headers };
      const token = o.token === undefined ? ADMIN_TOKEN : o.token;
      if (token !== null) headers.authorization = `Bearer ${token}`;
      const body = o.raw ?? (o.body === undefined ? undefined : JSON.stringify(o.body));
      if (body !== undefined) headers['content-type'] = o.contentType ?? 'application/json';
      const res = await fetch(`${url}${path}`, { method, headers, body });
      const text = await res.text();
      let json: unknown;
      try {
        json = text ? JSON.parse(text) : undefined;
      } catch {
        json = undefined;
      }
      return { status: res.status, headers: res.headers, text, json };
    },
    async rawStored(id) {
      const keys = await redis.keys(`${prefix}*cfg:*:${id}`);
      return keys.length === 0 ? '' : ((await redis.get(keys[0]!)) ?? '');
    },
    async close() {
      await server.close();
      await registry.close();
      await store.close();
      redis.disconnect();
      await redisServer.close();
      dir.cleanup();
    },
  };
}

/** Rewrites the tokens file (the API re-reads it on the next request). */
export function writeTokens(rig: AdminRig, text: string): void {
  writeFileSync(rig.tokensFile, text);
}
