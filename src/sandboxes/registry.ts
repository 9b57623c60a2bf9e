import { AuthProxyError, errorLine } from '../errors.js';
import type { Logger } from '../log.js';
import type { CompiledFile } from '../config/file.js';
import { compilePolicy } from '../config/compile.js';
import { validateConfig } from '../config/load.js';
import type { LoadedSources } from '../config/watch.js';
import type { ProxyConfig } from '../config/schema.js';
import type { CompiledPolicy } from '../policy/compiled.js';
import type { PolicySource } from '../runtime/engine.js';
import type { ValueUnsealer } from '../secrets/sealing.js';
import type { SandboxStore } from './store.js';
import { DEFAULT_IDENTITY, effectiveIdentity, type IdentityFields, type IdentitySource, type SandboxIdentity } from './identity.js';

interface StoredPolicy {
  readonly stamp: string;
  readonly config: ProxyConfig;
  readonly policy: CompiledPolicy;
  readonly identity: IdentityFields;
}

/**
 * Which compiled config applies to a sandbox, from every source: a config stored through the admin API
 * (shared-service mode), else the file's `sandboxes:` entry, else the file's top-level config (sidecar
 * mode, or a fleet-wide default). A sandbox none of them names gets no config, hence no credential.
 *
 * Each config is compiled once per change: the file when it is reloaded, a stored config when its
 * version moves (announced over Redis pub/sub, with a periodic resync in case an announcement is lost).
 * Swapping a map entry is atomic for the requests that read it.
 */
export class PolicyRegistry implements PolicySource, IdentitySource {
  private file: CompiledFile;
  private secrets: ReadonlyMap<string, string>;
  private readonly stored = new Map<string, StoredPolicy>();
  private timer: NodeJS.Timeout | undefined;
  private unsubscribe: (() => Promise<void>) | undefined;
  private resyncing: Promise<void> | undefined;

  constructor(
    loaded: LoadedSources,
    private readonly unsealer: ValueUnsealer | undefined,
    private readonly log: Logger,
    readonly store?: SandboxStore,
    /** The serve defaults (`--tenant-id`, `--organization-id`): sidecar mode, and sandboxes that name none. */
    readonly defaultIdentity: SandboxIdentity = DEFAULT_IDENTITY,
  ) {
    this.file = loaded.file;
    this.secrets = loaded.secrets;
  }

  policyFor(sandboxId: string): CompiledPolicy | undefined {
    return this.stored.get(sandboxId)?.policy ?? this.file.sandboxes.get(sandboxId) ?? this.file.default;
  }

  /**
   * Who a sandbox acts for in callbacks: each field from its stored record (admin API), else from its
   * `sandboxes:` file entry, else the serve defaults.
   */
  identityFor(sandboxId: string): SandboxIdentity {
    const file = effectiveIdentity(this.file.identities?.get(sandboxId), this.defaultIdentity);
    return effectiveIdentity(this.stored.get(sandboxId)?.identity, file);
  }

  /** Whether the config file defines this sandbox (the admin API leaves such ids alone). */
  isFileSandbox(sandboxId: string): boolean {
    return this.file.sandboxes.has(sandboxId);
  }

  /** Number of sandboxes with a config of their own. */
  get size(): number {
    return this.stored.size + [...this.file.sandboxes.keys()].filter((id) => !this.stored.has(id)).length;
  }

  /**
   * Checks that a config would apply here and now (workspace secrets present, sealed values open):
   * the admin API's last check before storing. Returns the problems, one line each, never a value.
   */
  check(config: ProxyConfig): string[] {
    try {
      compilePolicy(config, { secrets: this.secrets, unsealer: this.unsealer });
      return [];
    } catch (err) {
      if (err instanceof AuthProxyError) return [...err.problems];
      throw err;
    }
  }

  /** Applies a reloaded file; when the workspace secrets changed, stored configs are resolved again. */
  applyFile(loaded: LoadedSources): void {
    const secretsChanged = !sameMap(this.secrets, loaded.secrets);
    this.file = loaded.file;
    this.secrets = loaded.secrets;
    if (!secretsChanged) return;
    for (const [id, entry] of this.stored) {
      const policy = this.compile(id, entry.config);
      if (policy) this.stored.set(id, { ...entry, policy });
    }
  }

  /** Loads every stored config, then follows changes: pub/sub at once, a full resync every `resyncMs`. */
  async start(resyncMs = 10_000, readyMs = 3000): Promise<void> {
    if (!this.store) return;
    if (!(await this.store.ready(readyMs))) this.log.warn('sandbox config store not reachable yet; serving file configs and retrying');
    this.unsubscribe = await this.store.subscribe(
      (id) => void this.refresh(id),
      () => void this.resync(),
    );
    await this.resync();
    this.timer = setInterval(() => void this.resync(), resyncMs);
    this.timer.unref();
  }

  /** Brings every stored sandbox up to its current version and drops deleted ones. */
  resync(): Promise<void> {
    this.resyncing ??= this.doResync().finally(() => (this.resyncing = undefined));
    return this.resyncing;
  }

  private async doResync(): Promise<void> {
    if (!this.store) return;
    let versions: Map<string, string>;
    try {
      versions = await this.store.versions();
    } catch (err) {
      this.log.warn({ err: errorLine(err) }, 'sandbox config resync failed; serving the configs already loaded');
      return;
    }
    for (const id of this.stored.keys()) if (!versions.has(id)) this.stored.delete(id);
    const stale = [...versions].filter(([id, stamp]) => this.stored.get(id)?.stamp !== stamp).map(([id]) => id);
    for (let i = 0; i < stale.length; i += 100) await Promise.all(stale.slice(i, i + 100).map((id) => this.refresh(id)));
  }

  /** Reloads one sandbox from the store (after an announcement or during a resync). */
  async refresh(id: string): Promise<void> {
    if (!this.store) return;
    try {
      const entry = await this.store.get(id);
      if (!entry) {
        if (this.stored.delete(id)) this.log.info({ sandbox: id }, 'sandbox config removed');
        return;
      }
      if (this.stored.get(id)?.stamp === entry.stamp) return;
      const config = validateConfig(entry.config, `sandbox ${id}`);
      const policy = this.compile(id, config);
      const identity = { tenantId: entry.tenantId, organizationId: entry.organizationId };
      if (policy) this.stored.set(id, { stamp: entry.stamp, config, policy, identity });
    } catch (err) {
      this.log.error({ sandbox: id, err: errorLine(err) }, 'cannot load stored sandbox config; keeping the last good one');
    }
  }

  private compile(id: string, config: ProxyConfig): CompiledPolicy | undefined {
    try {
      return compilePolicy(config, { secrets: this.secrets, unsealer: this.unsealer });
    } catch (err) {
      const problems = err instanceof AuthProxyError ? err.problems.join('; ') : errorLine(err);
      this.log.error({ sandbox: id }, `sandbox config rejected, keeping the last good one: ${problems}`);
      return undefined;
    }
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.unsubscribe?.();
  }
}

function sameMap(a: ReadonlyMap<string, string>, b: ReadonlyMap<string, string>): boolean {
  if (a.size !== b.size) return false;
  for (const [k, v] of a) if (b.get(k) !== v) return false;
  return true;
}
