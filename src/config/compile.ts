import { createHash } from 'node:crypto';
import { AuthProxyError } from '../errors.js';
import { HostIndex } from '../policy/host-index.js';
import { AccessList } from '../policy/access.js';
import { compilePathPattern } from '../policy/path-pattern.js';
import { parseMatchHeader, type MatchHeader } from './match-header.js';
import {
  redactUrl,
  type CompiledCallback,
  type CompiledHeader,
  type CompiledPolicy,
  type CompiledRule,
} from '../policy/compiled.js';
import { headerValueProblem, type ProxyConfig } from './schema.js';
import { parseAccessEntry } from './access-pattern.js';
import type { ValueUnsealer } from '../secrets/sealing.js';
import { callbackOrigin, type SealTarget } from '../secrets/seal-binding.js';
import { resolveValue, type SealReport } from './resolve-value.js';
import { compileProviders } from './compile-providers.js';
import { isProviderRule } from './provider-schema.js';
import { compileRewrite, sealHosts, type SandboxLinks } from './compile-rewrite.js';

/** What applying a config needs besides the config itself. */
export interface CompileContext {
  /** Workspace secrets by key. */
  readonly secrets: ReadonlyMap<string, string>;
  /** Decrypts opaque values; without it, a config holding opaque values is rejected. */
  readonly unsealer: ValueUnsealer | undefined;
  /** `--gcp-token-uri-allow`: token endpoints besides Google's that a service-account key may name. */
  readonly gcpTokenUriAllow?: readonly string[];
  /** The sandbox whose config this is; sealed values bound to another sandbox are refused (src/secrets/seal-binding.ts). */
  readonly sandboxId?: string;
  /** `--allow-unbound-seals`: accept sealed values from before bindings (version 1), with a warning. */
  readonly allowUnboundSeals?: boolean;
  /** Links between sandboxes (shared-service mode); without them a `rewrite.sandbox` rule is a config error. */
  readonly sandboxLinks?: SandboxLinks;
  /** The admin API's check: a `rewrite.sandbox` destination must be reachable now (src/config/compile-rewrite.ts). */
  readonly requireLinks?: boolean;
}

interface HeaderSpec {
  readonly name: string;
  readonly type: 'plaintext' | 'workspace_secret' | 'opaque';
  readonly value: string;
}

/** A header value resolved: a secret template filled or a sealed value opened, then checked as a header value. */
function resolveHeader(
  h: HeaderSpec,
  ctx: CompileContext & { report: SealReport },
  where: string,
  problems: string[],
  target: SealTarget,
): string {
  return resolveValue(h, ctx, where, problems, headerValueProblem, target);
}

/**
 * Compiles a validated config into the index that decisions read: resolves `{KEY}` placeholders against
 * workspace secrets, unseals opaque values and builds host indexes. All problems are gathered and thrown
 * together, so a config is applied whole or not at all. Messages name the field and never a value.
 */
export function compilePolicy(config: ProxyConfig, given: CompileContext): CompiledPolicy {
  const problems: string[] = [];
  const report: SealReport = { unbound: [], sandboxBound: false };
  const ctx = { ...given, report };
  const resolve = (h: HeaderSpec, field: string, owner: string, target: SealTarget): CompiledHeader => ({
    name: h.name,
    value: resolveHeader(h, ctx, `${field}: ${owner}, header "${h.name}"`, problems, target),
    sensitive: h.type !== 'plaintext',
  });

  const rules: CompiledRule[] = [];
  const ruleIndex = new HostIndex();
  config.rules.forEach((rule, position) => {
    if (isProviderRule(rule)) return;
    const headers = rule.headers.map((h, i) =>
      resolve(h, `rules[${position}].headers[${i}].value`, `rule "${rule.name}"`, { hosts: sealHosts(rule) }),
    );
    const rewrite = rule.type === 'rewrite' ? compileRewrite(rule, position, ctx, problems) : undefined;
    if (!rule.enabled) return;
    ruleIndex.add(rules.length, rule.match_hosts);
    rules.push({
      name: rule.name,
      position,
      paths: rule.match_paths.map(compilePathPattern),
      matchHeaders: rule.match_headers.map(matchHeader),
      headers,
      pairs: headers.map((h) => [h.name, h.value] as const),
      ...(rewrite ? { rewrite } : {}),
    });
  });

  const callbackIndex = new HostIndex();
  const callbacks: CompiledCallback[] = config.callbacks.map((cb, position) => {
    callbackIndex.add(position, cb.match_hosts);
    return {
      id: callbackId(cb),
      position,
      url: cb.url,
      ttlSeconds: cb.ttl_seconds,
      fullRequest: cb.full_request,
      requestHeaders: cb.request_headers.map((h, i) =>
        resolve(h, `callbacks[${position}].request_headers[${i}].value`, `callback ${redactUrl(cb.url)}`, {
          callback: callbackOrigin(cb.url),
        }),
      ),
    };
  });

  if (problems.length > 0) throw new AuthProxyError('config_invalid', problems.join('; '), problems);

  const noProxy = new HostIndex();
  noProxy.add(0, config.no_proxy);
  const access = compileAccess(config.access_control);
  const providers = compileProviders(config, ctx, problems);
  if (problems.length > 0) throw new AuthProxyError('config_invalid', problems.join('; '), problems);
  const seals = {
    ...(report.unbound.length > 0 ? { unboundSeals: report.unbound } : {}),
    ...(report.sandboxBound ? { sandboxBound: true } : {}),
  };
  return { rules, ruleIndex, callbacks, callbackIndex, noProxy, access, ...providers, ...seals, source: config };
}

/**
 * The populated access_control list as an `AccessList` (regexes compiled once, here). LangChain lets only
 * one list be populated, and its clients send both (`{allow_list: [], deny_list: []}` = no restriction),
 * so an empty list beside the other counts as not set. An `allow_list: []` given alone still means
 * "nothing may be reached": a list that was written to allow nothing must not fail open.
 */
function compileAccess(ac: ProxyConfig['access_control']): CompiledPolicy['access'] {
  if (!ac) return undefined;
  const allow = ac.allow_list ?? [];
  const deny = ac.deny_list ?? [];
  const allowOnly = ac.allow_list !== undefined && ac.deny_list === undefined;
  const mode = allow.length > 0 || allowOnly ? 'allow' : 'deny';
  const entries = mode === 'allow' ? allow : deny;
  if (entries.length === 0 && mode === 'deny') return undefined;
  const parsed = entries.map((raw, i) => {
    const result = parseAccessEntry(raw);
    if (result.ok) return result.entry;
    // Unreachable for a validated config; kept so compile never trusts its input blindly.
    const problem = `access_control.${mode}_list[${i}]: ${result.problem}`;
    throw new AuthProxyError('config_invalid', problem, [problem]);
  });
  return { mode, list: new AccessList(parsed) };
}

/** A validated `match_headers` entry, parsed (the schema has already refused a bad one). */
function matchHeader(entry: string): MatchHeader {
  const parsed = parseMatchHeader(entry);
  if (!parsed.ok) throw new AuthProxyError('config_invalid', `match_headers: ${parsed.problem}`, [parsed.problem]);
  return parsed.header;
}

function callbackId(cb: ProxyConfig['callbacks'][number]): string {
  const canonical = JSON.stringify([
    cb.url,
    cb.match_hosts,
    cb.request_headers.map((h) => [h.name, h.type, h.value]),
    cb.full_request,
  ]);
  return createHash('sha256').update(canonical).digest('base64url').slice(0, 16);
}
