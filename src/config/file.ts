import { AuthProxyError } from '../errors.js';
import { SANDBOX_ID } from '../contracts/envoy.js';
import type { CompiledPolicy } from '../policy/compiled.js';
import { identityFieldProblem, type IdentityFields } from '../contracts/identity.js';
import { compilePolicy, type CompileContext } from './compile.js';
import { isShowableKey, parseYamlText, readConfigFile, validateConfig } from './load.js';
import { formatPath, type ProxyConfig } from './schema.js';

/**
 * What a mounted config file holds: one proxy_config for every sandbox (sidecar mode, or a fleet-wide
 * default), or a `sandboxes:` map of sandbox id -> proxy_config for a shared service.
 */
export interface FileConfig {
  readonly default: ProxyConfig | undefined;
  readonly sandboxes: ReadonlyMap<string, ProxyConfig>;
  /** The `tenant_id` / `organization_id` a `sandboxes:` entry names beside its proxy_config (entries without either are absent). */
  readonly identities?: ReadonlyMap<string, IdentityFields>;
}

/** A FileConfig, compiled. */
export interface CompiledFile {
  readonly default: CompiledPolicy | undefined;
  readonly sandboxes: ReadonlyMap<string, CompiledPolicy>;
  readonly identities?: ReadonlyMap<string, IdentityFields>;
}

const IDENTITY_KEYS = [
  ['tenant_id', 'tenantId'],
  ['organization_id', 'organizationId'],
] as const;

/**
 * Takes `tenant_id` and `organization_id` out of one `sandboxes:` entry (they sit beside its proxy_config
 * fields), so the strict proxy_config schema sees only its own keys. Problems name `sandboxes.ID.tenant_id`.
 */
function splitIdentity(
  entry: unknown,
  where: string,
  problems: string[],
): { config: unknown; identity: IdentityFields | undefined } {
  if (typeof entry !== 'object' || entry === null || Array.isArray(entry))
    return { config: entry, identity: undefined };
  const config: Record<string, unknown> = { ...(entry as Record<string, unknown>) };
  const identity: { tenantId?: string; organizationId?: string } = {};
  for (const [key, field] of IDENTITY_KEYS) {
    if (!(key in config)) continue;
    const value = config[key];
    delete config[key];
    const problem = identityFieldProblem(value);
    if (problem) problems.push(`${where}.${key}: ${problem}`);
    else identity[field] = value as string;
  }
  return {
    config,
    identity: identity.tenantId === undefined && identity.organizationId === undefined ? undefined : identity,
  };
}

function fail(problems: string[]): never {
  throw new AuthProxyError('config_invalid', problems.join('; '), problems);
}

/** Parses a config file's text; every problem names the file and the field (`sandboxes.ID.rules[0]...`). */
export function parseConfigFile(text: string, source: string): FileConfig {
  const value = parseYamlText(text, source);
  if (typeof value !== 'object' || value === null || Array.isArray(value) || !('sandboxes' in value)) {
    return { default: validateConfig(value, source), sandboxes: new Map() };
  }
  const problems: string[] = [];
  const extra = Object.keys(value).filter((k) => k !== 'sandboxes' && k !== 'description');
  for (const key of extra) {
    problems.push(
      isShowableKey(key)
        ? `${source}: ${key}: not allowed beside "sandboxes" (put it inside a sandbox's config)`
        : `${source}: (root): a key that is not a field name is not allowed beside "sandboxes"`,
    );
  }
  const map = (value as { sandboxes: unknown }).sandboxes;
  if (typeof map !== 'object' || map === null || Array.isArray(map))
    fail([...problems, `${source}: sandboxes: must be a map of sandbox id to proxy_config`]);
  const sandboxes = new Map<string, ProxyConfig>();
  const identities = new Map<string, IdentityFields>();
  for (const [id, entry] of Object.entries(map)) {
    if (!SANDBOX_ID.test(id)) {
      problems.push(
        `${source}: ${formatPath(['sandboxes', id])}: sandbox ids are 1-128 characters of A-Z a-z 0-9 . _ : -`,
      );
      continue;
    }
    const { config, identity } = splitIdentity(entry, `${source}: sandboxes.${id}`, problems);
    if (identity) identities.set(id, identity);
    try {
      sandboxes.set(id, validateConfig(config ?? {}, source, `sandboxes.${id}.`));
    } catch (err) {
      if (!(err instanceof AuthProxyError)) throw err;
      problems.push(...err.problems);
    }
  }
  if (problems.length > 0) fail(problems);
  return { default: undefined, sandboxes, identities };
}

/**
 * Compiles every config of a file, all or nothing; problems are prefixed with `source` and the sandbox.
 * A `sandboxes:` entry is compiled as that sandbox's config (its sealed values must be bound to it or to
 * `*`); the top-level config as `ctx.sandboxId`'s (the serve `--sandbox-id`).
 */
export function compileFile(file: FileConfig, ctx: CompileContext, source: string): CompiledFile {
  const problems: string[] = [];
  const compile = (config: ProxyConfig, prefix: string, sandboxId = ctx.sandboxId): CompiledPolicy | undefined => {
    try {
      return compilePolicy(config, { ...ctx, sandboxId });
    } catch (err) {
      if (!(err instanceof AuthProxyError)) throw err;
      problems.push(...err.problems.map((p) => `${source}: ${prefix}${p}`));
      return undefined;
    }
  };
  const compiledDefault = file.default ? compile(file.default, '') : undefined;
  const sandboxes = new Map<string, CompiledPolicy>();
  for (const [id, config] of file.sandboxes) {
    const policy = compile(config, `sandboxes.${id}.`, id);
    if (policy) sandboxes.set(id, policy);
  }
  if (problems.length > 0) fail(problems);
  return { default: compiledDefault, sandboxes, identities: file.identities };
}

/** The proxy_config of `sandbox` in a config file: its `sandboxes:` entry, else the top-level config. */
export function sandboxConfigFrom(path: string, sandbox: string, flag = '--sandbox'): ProxyConfig {
  const file = parseConfigFile(readConfigFile(path), path);
  const config = file.sandboxes.get(sandbox) ?? file.default;
  if (!config) throw new AuthProxyError('usage', `${flag}: "${sandbox}" has no config in ${path}`);
  return config;
}
