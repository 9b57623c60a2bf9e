import { AuthProxyError, errorLine } from '../errors.js';
import type { Logger } from '../log.js';
import type { CompiledFile } from '../config/file.js';
import { compilePolicy } from '../config/compile.js';
import { NO_SANDBOX_LINKS } from '../config/compile-rewrite.js';
import type { RedisLinkStore } from './link-store.js';
import { NET_ANNOUNCEMENT } from './link-store.js';
import { SandboxNetwork } from './links.js';
import { validateConfig } from '../config/load.js';
import type { LoadedSources } from '../config/watch.js';
import type { ProxyConfig } from '../config/schema.js';
import type { CompiledPolicy } from '../policy/compiled.js';
import type { PolicySource } from '../contracts/engine.js';
import type { ValueUnsealer } from '../secrets/sealing.js';
import type { SandboxStore, StoredSandbox } from './store.js';
import { isNewer, type RecordOrder } from './record.js';
import { callbackUrlProblems, type CallbackPolicy } from '../config/callback-policy.js';
import {
  DEFAULT_IDENTITY,
  effectiveIdentity,
  type IdentityFields,
  type IdentitySource,
  type SandboxIdentity,
} from '../contracts/identity.js';

interface StoredPolicy {
  readonly stamp: string;
  readonly config: ProxyConfig;
  readonly policy: CompiledPolicy;
  readonly identity: IdentityFields;
  readonly order: RecordOrder | undefined;
}

/** The place in history of a record of the old form, whose order is unknown (see `olderThanApplied`). */
const UNORDERED = 'unordered';
/** Most removed sandboxes whose last order is remembered, so a replayed old record can't bring them back. */
const MAX_TOMBSTONES = 100_000;

/** How a replica applies configs besides the config file itself. */
export interface RegistryOptions {
  /** `--sandbox-id`: the one sandbox a top-level config holding values sealed for a sandbox may serve. */
  readonly defaultSandboxId?: string;
  /** `--allow-unbound-seals`: accept sealed values that name no sandbox and no hosts, with a warning. */
  readonly allowUnboundSeals?: boolean;
  /** `--callback-allow`: checked again on every stored config this replica loads, not only by the admin API. */
  readonly callbackPolicy?: CallbackPolicy;
  /** `--gcp-token-uri-allow`: in every compile context here (stored configs and the admin API's apply-time check). */
  readonly gcpTokenUriAllow?: readonly string[];
  /** Where sandbox links and addresses are kept (shared-service mode); without it, `rewrite.sandbox` rules are refused. */
  readonly linkStore?: RedisLinkStore;
  /** Whether a loopback sandbox address may be dialled (`--egress-allow-cidrs` names it; tests). */
  readonly allowLoopback?: (address: string) => boolean;
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
export class PolicyRegistry implements PolicySource<CompiledPolicy>, IdentitySource {
  private file: CompiledFile;
  private secrets: ReadonlyMap<string, string>;
  private readonly stored = new Map<string, StoredPolicy>();
  /** Removed sandboxes -> the order of the last record applied (bounded; oldest forgotten first). */
  private readonly tombstones = new Map<string, RecordOrder | typeof UNORDERED>();
  /** Stamps refused as older than what was applied: not fetched again at every resync. */
  private readonly refused = new Map<string, string>();
  private timer: NodeJS.Timeout | undefined;
  private unsubscribe: (() => Promise<void>) | undefined;
  private resyncing: Promise<void> | undefined;
  /** Sandbox links and addresses, read per request by `rewrite: {sandbox}` rules (src/sandboxes/links.ts). */
  readonly links: SandboxNetwork | undefined;

  constructor(
    loaded: LoadedSources,
    private readonly unsealer: ValueUnsealer | undefined,
    private readonly log: Logger,
    readonly store?: SandboxStore,
    /** The serve defaults (`--tenant-id`, `--organization-id`): sidecar mode, and sandboxes that name none. */
    readonly defaultIdentity: SandboxIdentity = DEFAULT_IDENTITY,
    private readonly options: RegistryOptions = {},
  ) {
    this.file = loaded.file;
    this.secrets = loaded.secrets;
    this.warnFile(loaded.file);
    const allowLoopback = options.allowLoopback ?? (() => false);
    this.links =
      options.linkStore &&
      new SandboxNetwork(options.linkStore, log, { tenantOf: (id) => this.identityFor(id).tenantId, allowLoopback });
  }

  policyFor(sandboxId: string): CompiledPolicy | undefined {
    const own = this.stored.get(sandboxId)?.policy ?? this.file.sandboxes.get(sandboxId);
    if (own) return own;
    // A top-level config whose sealed values are bound to `--sandbox-id` serves that sandbox only.
    const fallback = this.file.default;
    return fallback?.sandboxBound && sandboxId !== this.options.defaultSandboxId ? undefined : fallback;
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
   * Checks that a config would apply here and now as `sandboxId`'s (workspace secrets present, sealed
   * values open and bound to that sandbox and their hosts): the admin API's last check before storing.
   * Returns the problems, one line each, never a value.
   */
  check(config: ProxyConfig, sandboxId: string): string[] {
    try {
      compilePolicy(config, { ...this.context(sandboxId), requireLinks: true });
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
    this.warnFile(loaded.file);
    if (!secretsChanged) return;
    for (const [id, entry] of this.stored) {
      const policy = this.compile(id, entry.config);
      if (policy) this.stored.set(id, { ...entry, policy });
    }
  }

  /** Loads every stored config, then follows changes: pub/sub at once, a full resync every `resyncMs`. */
  async start(resyncMs = 10_000, readyMs = 3000): Promise<void> {
    if (!this.store) return;
    if (!(await this.store.ready(readyMs)))
      this.log.warn('sandbox config store not reachable yet; serving file configs and retrying');
    this.unsubscribe = await this.store.subscribe(
      (id) =>
        void (id.startsWith(NET_ANNOUNCEMENT)
          ? this.links?.refresh(id.slice(NET_ANNOUNCEMENT.length))
          : this.refresh(id)),
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
    await this.links?.resync();
    let versions: Map<string, string>;
    try {
      versions = await this.store.versions();
    } catch (err) {
      this.log.warn({ err: errorLine(err) }, 'sandbox config resync failed; serving the configs already loaded');
      return;
    }
    for (const id of this.stored.keys()) if (!versions.has(id)) this.forget(id);
    const stale = [...versions]
      .filter(([id, stamp]) => this.stored.get(id)?.stamp !== stamp && this.refused.get(id) !== stamp)
      .map(([id]) => id);
    for (let i = 0; i < stale.length; i += 100)
      await Promise.all(stale.slice(i, i + 100).map((id) => this.refresh(id)));
  }

  /** Reloads one sandbox from the store (after an announcement or during a resync). */
  async refresh(id: string): Promise<void> {
    if (!this.store) return;
    try {
      const entry = await this.store.get(id);
      if (!entry) {
        this.refused.delete(id);
        if (this.forget(id)) this.log.info({ sandbox: id }, 'sandbox config removed');
        return;
      }
      if (this.stored.get(id)?.stamp === entry.stamp) return;
      if (this.olderThanApplied(id, entry)) {
        this.refused.set(id, entry.stamp);
        this.log.error(
          { sandbox: id, version: entry.version, applied: this.stored.get(id)?.stamp ?? '(removed)' },
          'stored sandbox config is older than one this replica applied (replayed into Redis?); refused, keeping the last good one',
        );
        return;
      }
      if (!entry.order)
        this.log.warn(
          { sandbox: id },
          'stored sandbox config is in the old format, whose version is not authenticated; write it again through the admin API',
        );
      const config = validateConfig(entry.config, `sandbox ${id}`);
      const policy = this.compile(id, config);
      const identity = { tenantId: entry.tenantId, organizationId: entry.organizationId };
      if (policy) {
        this.stored.set(id, { stamp: entry.stamp, config, policy, identity, order: entry.order });
        this.tombstones.delete(id);
        this.refused.delete(id);
      }
    } catch (err) {
      this.log.error(
        { sandbox: id, err: errorLine(err) },
        'cannot load stored sandbox config; keeping the last good one',
      );
    }
  }

  /**
   * Whether a stored record is not newer than the last one this replica applied for the sandbox (held, or
   * remembered after its removal): then it can only be an old record put back into Redis. A record of the
   * old form (no order) is accepted only while nothing was applied; after that, never.
   */
  private olderThanApplied(id: string, entry: StoredSandbox): boolean {
    const held = this.stored.get(id);
    const mark = held ? (held.order ?? UNORDERED) : this.tombstones.get(id);
    if (mark === undefined) return false;
    if (!entry.order) return true;
    return mark !== UNORDERED && !isNewer(entry.order, mark);
  }

  /** Drops a stored sandbox, remembering the order of its last record; true when one was held. */
  private forget(id: string): boolean {
    const held = this.stored.get(id);
    if (!held) return false;
    this.stored.delete(id);
    this.tombstones.delete(id);
    this.tombstones.set(id, held.order ?? UNORDERED);
    if (this.tombstones.size > MAX_TOMBSTONES) this.tombstones.delete(this.tombstones.keys().next().value!);
    return true;
  }

  private context(sandboxId: string) {
    // Stored configs are shared-service mode's: a rewrite to a sandbox finds its link per request.
    return {
      secrets: this.secrets,
      unsealer: this.unsealer,
      sandboxId,
      allowUnboundSeals: this.options.allowUnboundSeals,
      gcpTokenUriAllow: this.options.gcpTokenUriAllow,
      sandboxLinks: this.links ?? NO_SANDBOX_LINKS,
    };
  }

  /** Logs the fields of a config that use unbound sealed values (let through by --allow-unbound-seals). */
  private warnUnbound(where: Record<string, string>, policy: CompiledPolicy): void {
    if (policy.unboundSeals) {
      this.log.warn(
        { ...where, fields: policy.unboundSeals.map((f) => f.slice(0, f.indexOf(':'))) },
        'config uses sealed values not bound to a sandbox and hosts (--allow-unbound-seals); seal them again with `authproxy seal --sandbox --hosts`',
      );
    }
  }

  private warnFile(file: CompiledFile): void {
    if (file.default) this.warnUnbound({ config: 'file' }, file.default);
    for (const [id, policy] of file.sandboxes) this.warnUnbound({ config: 'file', sandbox: id }, policy);
  }

  private compile(id: string, config: ProxyConfig): CompiledPolicy | undefined {
    try {
      const refused = this.options.callbackPolicy ? callbackUrlProblems(config, this.options.callbackPolicy) : [];
      if (refused.length > 0) throw new AuthProxyError('config_invalid', refused.join('; '), refused);
      const policy = compilePolicy(config, this.context(id));
      this.warnUnbound({ sandbox: id }, policy);
      return policy;
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
