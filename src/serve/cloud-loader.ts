import { AuthProxyError, errorLine } from '../errors.js';
import type { CompiledFile } from '../config/file.js';
import type { AwsSetup } from '../cloud/aws/setup.js';
import type { GcpSetup } from '../cloud/gcp/setup.js';
import type { AzureSetup } from '../cloud/azure/setup.js';
import type { CompiledPolicy } from '../policy/compiled.js';
import type { ApplyOutcome, LoadedSources } from '../config/watch.js';
import type { Logger } from '../log.js';
import type { SandboxStore } from '../sandboxes/store.js';
import type { CloudProviders } from '../engine/engine.js';

/**
 * What a config may need loaded: the AWS signer (`aws`, any `type: aws` rule), AWS role sessions through
 * the SDK's STS client (`aws_role`, an `aws: {role_arn}` rule; implies `aws`), the Google Cloud minter,
 * the Azure Storage signer (`azure`).
 */
export type CloudFeature = 'aws' | 'aws_role' | 'gcp' | 'azure';

type Handlers = { -readonly [K in keyof CloudProviders]-?: NonNullable<CloudProviders[K]> };

/** What building each provider's handler needs (the `serve` pieces it is wired to). */
export interface CloudSetups {
  readonly aws: AwsSetup;
  readonly gcp: GcpSetup;
  readonly azure: AzureSetup;
}

/** How a provider's handler is made once its module is loaded; replaceable so tests can make loading fail. */
export interface CloudFactories {
  /** With `roles`, the signer can assume roles (the STS client is loaded too). */
  readonly aws: (roles: boolean) => Promise<Handlers['aws']>;
  readonly gcp: () => Promise<Handlers['gcp']>;
  readonly azure: () => Promise<Handlers['azure']>;
}

const NAMES: Record<CloudFeature, string> = {
  aws: 'AWS',
  aws_role: 'AWS role (STS)',
  gcp: 'Google Cloud',
  azure: 'Azure',
};

/**
 * The real factories: `import()` of src/cloud/<provider>/setup.js, which pulls the provider's SDK in.
 * `setups` is read when a provider is first needed (the cache and registry exist by then).
 */
export function cloudFactories(setups: () => CloudSetups): CloudFactories {
  return {
    aws: async (roles) => {
      const [{ createAwsHandler }, sts] = await Promise.all([
        import('../cloud/aws/setup.js'),
        roles ? import('../cloud/aws/sts.js') : undefined,
      ]);
      return createAwsHandler(setups().aws, sts?.stsRoleAssumer);
    },
    gcp: async () => (await import('../cloud/gcp/setup.js')).createGcpHandler(setups().gcp),
    azure: async () => (await import('../cloud/azure/setup.js')).createAzureHandler(setups().azure),
  };
}

/**
 * The Engine's cloud providers, filled in as configs need them: a handler exists once its module has
 * loaded, and `ensure` is awaited before any config with such a rule is applied, so the request path
 * never waits for a module (and reads the handler with a plain property access). A provider decision
 * with no handler still fails closed in the Engine (502). A failed load is not remembered: the next
 * config that needs the provider tries again.
 */
export class CloudModules implements CloudProviders {
  aws: Handlers['aws'] | undefined;
  gcp: Handlers['gcp'] | undefined;
  azure: Handlers['azure'] | undefined;
  /** Whether `aws` can assume roles. */
  private awsRoles = false;
  private readonly loading = new Map<CloudFeature, Promise<void>>();

  constructor(private readonly factories: CloudFactories) {}

  /** Whether every feature named is loaded (then a config needing only those applies synchronously). */
  ready(needs: ReadonlySet<CloudFeature>): boolean {
    for (const feature of needs) if (!this.has(feature)) return false;
    return true;
  }

  /**
   * Loads the features named (once each; concurrent callers share the load). Rejects with a one-line
   * `config_invalid` AuthProxyError naming the provider when its module or SDK can't be loaded.
   */
  ensure(needs: ReadonlySet<CloudFeature>): Promise<void> {
    const waits: Promise<void>[] = [];
    for (const feature of needs) {
      // A signer with roles is also the plain one: don't build both.
      if (feature === 'aws' && needs.has('aws_role')) continue;
      if (!this.has(feature)) waits.push(this.load(feature));
    }
    return waits.length === 0 ? Promise.resolve() : Promise.all(waits).then(() => undefined);
  }

  private has(feature: CloudFeature): boolean {
    return feature === 'aws_role' ? this.awsRoles : this[feature] !== undefined;
  }

  private load(feature: CloudFeature): Promise<void> {
    let pending = this.loading.get(feature);
    if (!pending) {
      pending = this.make(feature).finally(() => this.loading.delete(feature));
      this.loading.set(feature, pending);
    }
    return pending;
  }

  private async make(feature: CloudFeature): Promise<void> {
    try {
      if (feature === 'gcp') this.gcp = await this.factories.gcp();
      else if (feature === 'azure') this.azure = await this.factories.azure();
      else if (feature === 'aws_role') {
        this.aws = await this.factories.aws(true);
        this.awsRoles = true;
      } else {
        const signer = await this.factories.aws(false);
        // One with roles may have been built meanwhile: keep it.
        this.aws ??= signer;
      }
    } catch (err) {
      const problem = `${NAMES[feature]} support could not be loaded (${errorLine(err)}); configs with a type: ${feature} rule are refused`;
      throw new AuthProxyError('config_invalid', problem);
    }
  }
}

/** The providers a set of compiled configs uses: those with an enabled `type: aws` / `gcp` / `azure` rule. */
export function policiesNeed(policies: Iterable<CompiledPolicy | undefined>): Set<CloudFeature> {
  const needs = new Set<CloudFeature>();
  for (const policy of policies) {
    if (policy?.aws) needs.add('aws');
    if (policy?.aws?.auth.kind === 'role') needs.add('aws_role');
    if (policy?.gcp) needs.add('gcp');
    if (policy?.azure) needs.add('azure');
  }
  return needs;
}

/** The providers a compiled config file uses, top-level config and every `sandboxes:` entry. */
export function fileNeeds(file: CompiledFile): Set<CloudFeature> {
  return policiesNeed([file.default, ...file.sandboxes.values()]);
}

/**
 * The providers a stored config may use, read from its raw (not yet validated) form: every rule whose
 * `type` is `aws`, `gcp` or `azure`, enabled or not. A superset is harmless: it only loads a module early.
 */
export function rawConfigNeeds(config: unknown): Set<CloudFeature> {
  const needs = new Set<CloudFeature>();
  const rules = typeof config === 'object' && config !== null ? (config as { rules?: unknown }).rules : undefined;
  if (!Array.isArray(rules)) return needs;
  for (const rule of rules as unknown[]) {
    const type = typeof rule === 'object' && rule !== null ? (rule as { type?: unknown }).type : undefined;
    if (type === 'aws' || type === 'gcp' || type === 'azure') needs.add(type);
    const aws = type === 'aws' ? (rule as { aws?: unknown }).aws : undefined;
    if (typeof aws === 'object' && aws !== null && 'role_arn' in aws) needs.add('aws_role');
  }
  return needs;
}

/**
 * The sandbox store as the registry sees it: `get` resolves only once the providers the stored config
 * names are loaded, so a stored config is never applied before its handler exists. When one can't be
 * loaded, `get` rejects and the registry keeps the last good config (and tries again at the next resync).
 */
export function cloudAwareStore(store: SandboxStore, cloud: CloudModules): SandboxStore {
  return {
    get: async (id) => {
      const entry = await store.get(id);
      if (entry) await cloud.ensure(rawConfigNeeds(entry.config));
      return entry;
    },
    put: (id, config, expect, identity) => store.put(id, config, expect, identity),
    delete: (id) => store.delete(id),
    versions: () => store.versions(),
    subscribe: (onChange, onConnected) => store.subscribe(onChange, onConnected),
    ready: (ms) => store.ready(ms),
    close: () => store.close(),
  };
}

/** The config watcher's `apply`, as `deferredFileApply` wraps it. */
export interface FileApply {
  /** Applies at once ('applied'), or later once its providers have loaded ('deferred': it logs and counts itself). */
  apply(loaded: LoadedSources): ApplyOutcome;
}

/**
 * Wraps the applying of a reloaded config file: one that needs only loaded providers (the usual case)
 * applies at once, as before. One that needs a provider not loaded yet is applied whole once the module
 * has loaded, or not at all when it can't be (an error line; the last good config stays), and counted
 * then; a newer reload arriving meanwhile wins. Never a half-applied config.
 */
export function deferredFileApply(
  cloud: CloudModules,
  apply: (loaded: LoadedSources) => void,
  count: (result: 'ok' | 'failed') => void,
  log: Logger,
): FileApply {
  let latest = 0;
  return {
    apply: (loaded) => {
      const mine = ++latest;
      const needs = fileNeeds(loaded.file);
      if (cloud.ready(needs)) {
        apply(loaded);
        return 'applied';
      }
      log.info({ providers: [...needs] }, 'config reload waits for cloud provider support to load');
      cloud.ensure(needs).then(
        () => {
          if (mine !== latest) return;
          try {
            apply(loaded);
          } catch (err) {
            count('failed');
            log.error(`config reload rejected, keeping the last good config: ${errorLine(err)}`);
            return;
          }
          count('ok');
          log.info({ providers: [...needs] }, 'config reloaded');
        },
        (err: unknown) => {
          if (mine !== latest) return;
          count('failed');
          log.error(`config reload rejected, keeping the last good config: ${errorLine(err)}`);
        },
      );
      return 'deferred';
    },
  };
}
