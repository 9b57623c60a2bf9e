import type {
  ApiErrorBody,
  ProxyConfigPatch,
  ProxyConfigWrite,
  SandboxAddressResponse,
  SandboxConfigResponse,
  SandboxEnvResponse,
  SandboxLink,
  SandboxLinksResponse,
} from './types.js';
import { DEFAULT_RETRY, isRetryableStatus, nextDelay, retryAfterMs, type RetryOptions } from './retry.js';

/** Options of `AuthProxyClient`. */
export interface AuthProxyClientOptions {
  /** The admin API's base URL, e.g. `http://authproxy-admin:8081`. */
  readonly baseUrl: string;
  /** A bearer token from the server's `--admin-tokens` file. */
  readonly token: string;
  /** A fetch implementation (default: the global `fetch`). */
  readonly fetch?: typeof fetch;
  /** Further attempts after the first on 429/5xx (and network errors for GET, PUT, DELETE); default 3. */
  readonly retries?: number;
  /** Finer retry timing; `retries` above wins over `retry.retries`. */
  readonly retry?: Partial<RetryOptions>;
  /** Timeout of one attempt (default 10 s). */
  readonly timeoutMs?: number;
  /** How the client waits between attempts (default `setTimeout`); lets tests observe the delays asked for. */
  readonly sleep?: (ms: number) => Promise<void>;
}

/**
 * An admin API error: the HTTP status (0 when no response arrived), the server's one-line `error`, and its
 * field-named `problems` (e.g. `rules[0].match_hosts[0]: ...`). Never contains the token or a secret value.
 */
export class AuthProxyApiError extends Error {
  constructor(
    readonly status: number,
    readonly error: string,
    readonly problems: readonly string[] = [],
    options?: { cause?: unknown },
  ) {
    super(problems.length > 0 ? `${status} ${error}: ${problems.join('; ')}` : `${status} ${error}`, options);
    this.name = 'AuthProxyApiError';
  }
}

type Method = 'GET' | 'PUT' | 'PATCH' | 'DELETE';
/** Methods safe to repeat after a network error (the request may have reached the server). */
const IDEMPOTENT: ReadonlySet<Method> = new Set(['GET', 'PUT', 'DELETE']);

const sleepFor = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * A typed client for authproxy's admin API (shared-service mode). Exists so orchestrators configure a
 * sandbox's credentials in one call — with retries on 429 and 5xx that honour `Retry-After`, bounded
 * backoff, per-attempt timeouts, and errors that carry the server's field-named problems.
 * Loads no runtime dependency: only `fetch`.
 */
/** Options of a write: `ifMatch` (a response's `etag`) makes it apply only to that version (else 412). */
export interface WriteOptions {
  readonly ifMatch?: string;
  /** Create only: fail with 412 when the sandbox already has a config (If-None-Match: *). */
  readonly ifAbsent?: boolean;
  /**
   * The tenant (workspace) the sandbox belongs to, sent to callbacks as `identity.tenant_id`. Create and
   * replace: left out = the token's tenant (a `tenant=` token), else the server's `--tenant-id`; patch:
   * left out = kept. A tenant-scoped token may only name its own tenant (else 403).
   */
  readonly tenantId?: string;
  /** The organization sent to callbacks as `identity.organization_id`; patch: left out = kept, `null` = removed. */
  readonly organizationId?: string | null;
}

export class AuthProxyClient {
  private readonly baseUrl: string;
  private readonly fetchFn: typeof fetch;
  private readonly retry: RetryOptions;
  private readonly timeoutMs: number;
  private readonly sleep: (ms: number) => Promise<void>;

  constructor(private readonly options: AuthProxyClientOptions) {
    this.baseUrl = options.baseUrl.replace(/\/+$/, '');
    this.fetchFn = options.fetch ?? globalThis.fetch;
    this.retry = {
      ...DEFAULT_RETRY,
      ...options.retry,
      ...(options.retries !== undefined ? { retries: options.retries } : {}),
    };
    this.timeoutMs = options.timeoutMs ?? 10_000;
    this.sleep = options.sleep ?? sleepFor;
  }

  /** Creates a sandbox's config (PUT: replaces one that already exists; same call as `replace`). */
  create(sandboxId: string, config: ProxyConfigWrite, options: WriteOptions = {}): Promise<SandboxConfigResponse> {
    return this.send<SandboxConfigResponse>(
      'PUT',
      configPath(sandboxId),
      withIdentity(config, options),
      options.ifMatch,
      options.ifAbsent,
    );
  }

  /** Replaces a sandbox's config whole (PUT); every opaque header needs its value. */
  replace(sandboxId: string, config: ProxyConfigWrite, options: WriteOptions = {}): Promise<SandboxConfigResponse> {
    return this.send<SandboxConfigResponse>(
      'PUT',
      configPath(sandboxId),
      withIdentity(config, options),
      options.ifMatch,
    );
  }

  /**
   * Replaces a stored config wholesale, except that an opaque header sent without a value (or with
   * `is_set: true`) keeps its stored value — so the `proxy_config` of `get()` can be edited and sent back.
   * 404 when the sandbox has no stored config.
   */
  patch(sandboxId: string, config: ProxyConfigPatch, options: WriteOptions = {}): Promise<SandboxConfigResponse> {
    return this.send<SandboxConfigResponse>(
      'PATCH',
      configPath(sandboxId),
      withIdentity(config, options),
      options.ifMatch,
    );
  }

  /** Reads a sandbox's config; opaque headers come back as `{name, type: "opaque", is_set: true}`. */
  get(sandboxId: string): Promise<SandboxConfigResponse> {
    return this.send<SandboxConfigResponse>('GET', configPath(sandboxId));
  }

  /** Deletes a sandbox's config; false when there was none. */
  async delete(sandboxId: string): Promise<boolean> {
    try {
      await this.send<void>('DELETE', configPath(sandboxId));
      return true;
    } catch (err) {
      if (err instanceof AuthProxyApiError && err.status === 404) return false;
      throw err;
    }
  }

  /** The `env_vars` placeholders of the sandbox's enabled rules (never secrets). */
  async env(sandboxId: string): Promise<Record<string, string>> {
    return (await this.send<SandboxEnvResponse>('GET', `/v1/sandboxes/${encodeURIComponent(sandboxId)}/env`)).env_vars;
  }

  /** Registers where a sandbox's own services listen (an IP literal): the target of other sandboxes' `rewrite: {sandbox}` rules. */
  async setAddress(sandboxId: string, address: string): Promise<void> {
    await this.send<SandboxAddressResponse>('PUT', `${sandboxPath(sandboxId)}/address`, { address });
  }

  /** A sandbox's registered address, or undefined when none is. */
  async getAddress(sandboxId: string): Promise<string | undefined> {
    return (await this.orMissing(this.send<SandboxAddressResponse>('GET', `${sandboxPath(sandboxId)}/address`)))
      ?.address;
  }

  /** Removes a sandbox's address (rewrites to it are refused from the next request); false when there was none. */
  async deleteAddress(sandboxId: string): Promise<boolean> {
    return (
      (await this.orMissing(this.send<void>('DELETE', `${sandboxPath(sandboxId)}/address`).then(() => true))) ?? false
    );
  }

  /** Lets sandbox `from` reach these ports of sandbox `to` (replacing the ports of an existing link). */
  link(from: string, to: string, ports: readonly number[]): Promise<SandboxLink> {
    return this.send<SandboxLink>('PUT', linkPath(from, to), { ports });
  }

  /** One link, or undefined when `from` has none to `to`. */
  getLink(from: string, to: string): Promise<SandboxLink | undefined> {
    return this.orMissing(this.send<SandboxLink>('GET', linkPath(from, to)));
  }

  /** The links from a sandbox. */
  async links(from: string): Promise<SandboxLink[]> {
    return (await this.send<SandboxLinksResponse>('GET', `${sandboxPath(from)}/links`)).links;
  }

  /** Removes a link (requests through it are refused from the next one on); false when there was none. */
  async unlink(from: string, to: string): Promise<boolean> {
    return (await this.orMissing(this.send<void>('DELETE', linkPath(from, to)).then(() => true))) ?? false;
  }

  /** A read or delete whose 404 means "none". */
  private async orMissing<T>(call: Promise<T>): Promise<T | undefined> {
    try {
      return await call;
    } catch (err) {
      if (err instanceof AuthProxyApiError && err.status === 404) return undefined;
      throw err;
    }
  }

  private async send<T>(method: Method, path: string, body?: unknown, ifMatch?: string, ifAbsent = false): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      let res: Response;
      try {
        res = await this.fetchFn(`${this.baseUrl}${path}`, {
          method,
          headers: {
            authorization: `Bearer ${this.options.token}`,
            accept: 'application/json',
            ...(body === undefined ? {} : { 'content-type': 'application/json' }),
            ...(ifMatch === undefined ? {} : { 'if-match': ifMatch }),
            ...(ifAbsent ? { 'if-none-match': '*' } : {}),
          },
          body: body === undefined ? null : JSON.stringify(body),
          signal: AbortSignal.timeout(this.timeoutMs),
        });
      } catch (err) {
        const wait = IDEMPOTENT.has(method) ? nextDelay(attempt, this.retry, undefined) : undefined;
        if (wait === undefined)
          throw new AuthProxyApiError(0, `${method} ${path}: no response (${describe(err)})`, [], { cause: err });
        await this.sleep(wait);
        continue;
      }
      if (res.ok) return (res.status === 204 ? undefined : await res.json()) as T;
      const wait = isRetryableStatus(res.status)
        ? nextDelay(attempt, this.retry, retryAfterMs(res.headers.get('retry-after')))
        : undefined;
      if (wait === undefined) throw await apiError(res);
      await res.body?.cancel().catch(() => undefined);
      await this.sleep(wait);
    }
  }
}

/** The write body: the proxy_config with `tenant_id` / `organization_id` beside its fields when given. */
function withIdentity(config: object, options: WriteOptions): object {
  return {
    ...config,
    ...(options.tenantId === undefined ? {} : { tenant_id: options.tenantId }),
    ...(options.organizationId === undefined ? {} : { organization_id: options.organizationId }),
  };
}

function sandboxPath(sandboxId: string): string {
  return `/v1/sandboxes/${encodeURIComponent(sandboxId)}`;
}

function linkPath(from: string, to: string): string {
  return `${sandboxPath(from)}/links/${encodeURIComponent(to)}`;
}

function configPath(sandboxId: string): string {
  return `/v1/sandboxes/${encodeURIComponent(sandboxId)}/proxy-config`;
}

function describe(err: unknown): string {
  if (err instanceof Error && err.name === 'TimeoutError') return 'timed out';
  const cause = err instanceof Error ? (err.cause as { code?: string } | undefined)?.code : undefined;
  return cause ?? (err instanceof Error ? err.message.split('\n')[0]! : 'network error');
}

async function apiError(res: Response): Promise<AuthProxyApiError> {
  const text = await res.text().catch(() => '');
  try {
    const body = JSON.parse(text) as Partial<ApiErrorBody>;
    if (typeof body.error === 'string') {
      const problems = Array.isArray(body.problems)
        ? body.problems.filter((p): p is string => typeof p === 'string')
        : [];
      return new AuthProxyApiError(res.status, body.error, problems);
    }
  } catch {
    /* not JSON: a proxy or load balancer answered */
  }
  return new AuthProxyApiError(res.status, res.statusText || 'error');
}
