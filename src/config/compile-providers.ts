import { createHash, createPrivateKey } from 'node:crypto';
import type { CompiledAwsRule, CompiledGcpRule } from '../policy/compiled.js';
import { HostIndex } from '../policy/host-index.js';
import { isProviderRule, type AwsRule, type GcpRule } from './provider-schema.js';
import { resolveValue, type ResolveContext } from './resolve-value.js';
import { compileAzure } from './compile-azure.js';
import type { CompiledAzureRule } from '../policy/azure-hosts.js';
import type { ProxyConfig } from './schema.js';

/** Google's token endpoints; any other `token_uri` needs `--gcp-token-uri-allow`. */
export const GOOGLE_TOKEN_URIS = [
  'https://oauth2.googleapis.com/token',
  'https://accounts.google.com/o/oauth2/token',
  'https://www.googleapis.com/oauth2/v4/token',
];

/** What compiling provider rules needs besides the values' secrets. */
export interface ProviderContext extends ResolveContext {
  /** Extra token endpoints (exact URLs or `https://host` prefixes) a service-account key may name. */
  readonly gcpTokenUriAllow?: readonly string[];
}

const ACCESS_KEY_ID = /^[A-Z0-9]{16,128}$/;
/** Where a provider rule's Secrets go: the provider's own hosts, so a sealed Secret is bound to the provider. */
const AWS_TARGET = { provider: 'aws' } as const;
const GCP_TARGET = { provider: 'gcp' } as const;
const noSpace = (v: string) => (/\s/.test(v) ? 'must not contain white space' : undefined);

/** A provider rule's `match_hosts` narrowing as an index; undefined (every provider host) when empty. */
function narrowing(patterns: readonly string[] = []): HostIndex | undefined {
  if (patterns.length === 0) return undefined;
  const index = new HostIndex();
  index.add(0, patterns);
  return index;
}

function compileAws(rule: AwsRule, position: number, ctx: ProviderContext, problems: string[]): CompiledAwsRule {
  const at = `rules[${position}].aws`;
  const hosts = narrowing(rule.match_hosts);
  if ('role_arn' in rule.aws) {
    return {
      name: rule.name,
      position,
      hosts,
      auth: { kind: 'role', roleArn: rule.aws.role_arn, sessionTags: rule.aws.session_tags ?? {} },
    };
  }
  const accessKeyId = resolveValue(
    rule.aws.access_key_id,
    ctx,
    `${at}.access_key_id: rule "${rule.name}"`,
    problems,
    (v) => (ACCESS_KEY_ID.test(v) ? undefined : 'is not an AWS access key id (A-Z and 0-9)'),
    AWS_TARGET,
  );
  const secretAccessKey = resolveValue(
    rule.aws.secret_access_key,
    ctx,
    `${at}.secret_access_key: rule "${rule.name}"`,
    problems,
    noSpace,
    AWS_TARGET,
  );
  return { name: rule.name, position, hosts, auth: { kind: 'static', accessKeyId, secretAccessKey } };
}

/** Checks a service-account key's JSON; returns the problem (never a value), or the parts minting needs. */
function serviceAccount(
  text: string,
  allow: readonly string[],
): { problem: string } | Omit<CompiledGcpRule, 'name' | 'position' | 'scopes' | 'id' | 'hosts'> {
  let key: Record<string, unknown>;
  try {
    const parsed: unknown = JSON.parse(text);
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
      return { problem: 'is not a JSON object' };
    key = parsed as Record<string, unknown>;
  } catch {
    return { problem: 'is not JSON (a service-account key file)' };
  }
  if (key.type !== undefined && key.type !== 'service_account')
    return { problem: 'is not a service-account key ("type" must be "service_account")' };
  const { client_email: email, private_key: pem, token_uri: tokenUri, private_key_id: keyId } = key;
  if (typeof email !== 'string' || !/^[^@\s]+@[^@\s]+$/.test(email)) return { problem: 'has no valid "client_email"' };
  if (typeof pem !== 'string') return { problem: 'has no "private_key"' };
  try {
    if (createPrivateKey(pem).asymmetricKeyType !== 'rsa') return { problem: '"private_key" is not an RSA key' };
  } catch {
    return { problem: '"private_key" is not a PEM private key' };
  }
  if (typeof tokenUri !== 'string' || !tokenUri.startsWith('https://'))
    return { problem: '"token_uri" must be an https:// URL' };
  const allowed =
    GOOGLE_TOKEN_URIS.includes(tokenUri) ||
    allow.some((a) => tokenUri === a || tokenUri.startsWith(a.endsWith('/') ? a : `${a}/`));
  if (!allowed)
    return { problem: `"token_uri" is not Google's token endpoint (allow others with --gcp-token-uri-allow)` };
  return {
    clientEmail: email,
    privateKey: pem,
    tokenUri,
    ...(typeof keyId === 'string' ? { privateKeyId: keyId } : {}),
  };
}

function compileGcp(
  rule: GcpRule,
  position: number,
  ctx: ProviderContext,
  problems: string[],
): CompiledGcpRule | undefined {
  const where = `rules[${position}].gcp.service_account_json: rule "${rule.name}"`;
  const before = problems.length;
  const text = resolveValue(rule.gcp.service_account_json, ctx, where, problems, undefined, GCP_TARGET);
  if (problems.length > before) return undefined;
  const sa = serviceAccount(text, ctx.gcpTokenUriAllow ?? []);
  if ('problem' in sa) {
    problems.push(`${where}: ${sa.problem}`);
    return undefined;
  }
  // The token cache key: changes whenever the key or the scopes do, reveals neither.
  const id = createHash('sha256')
    .update(JSON.stringify([sa.clientEmail, sa.privateKey, sa.tokenUri, [...rule.gcp.scopes].sort()]))
    .digest('base64url')
    .slice(0, 16);
  return { name: rule.name, position, hosts: narrowing(rule.match_hosts), scopes: rule.gcp.scopes, id, ...sa };
}

/**
 * Compiles the enabled provider rules (at most one aws, gcp and azure each, as the schema ensures): resolves
 * their Secrets and checks a service-account key when the config is applied. Disabled ones are still
 * resolved, so that enabling one can never fail later. Problems are pushed, one line each, no value.
 */
export function compileProviders(
  config: ProxyConfig,
  ctx: ProviderContext,
  problems: string[],
): { aws: CompiledAwsRule | undefined; gcp: CompiledGcpRule | undefined; azure: CompiledAzureRule | undefined } {
  let aws: CompiledAwsRule | undefined;
  let gcp: CompiledGcpRule | undefined;
  let azure: CompiledAzureRule | undefined;
  config.rules.forEach((rule, position) => {
    if (!isProviderRule(rule)) return;
    if (rule.type === 'azure') {
      const compiled = compileAzure(rule, position, ctx, problems);
      if (rule.enabled) azure = compiled;
    } else if (rule.type === 'aws') {
      const compiled = compileAws(rule, position, ctx, problems);
      if (rule.enabled) aws = compiled;
    } else {
      const compiled = compileGcp(rule, position, ctx, problems);
      if (rule.enabled) gcp = compiled;
    }
  });
  return { aws, gcp, azure };
}
