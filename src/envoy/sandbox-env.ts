import type { ProxyConfig } from '../config/schema.js';

/** Where the sandbox finds the proxy and the CA bundle that trusts authproxy's leaves. */
export interface SandboxEnvOptions {
  readonly proxyUrl: string;
  /** PEM bundle inside the sandbox: the system roots plus authproxy's CA (see `authproxy ca bundle`). */
  readonly caFile: string;
}

/** The variables curl, git, Python requests and Node read for their CA bundle. */
const CA_VARIABLES = ['SSL_CERT_FILE', 'CURL_CA_BUNDLE', 'GIT_SSL_CAINFO', 'REQUESTS_CA_BUNDLE', 'NODE_EXTRA_CA_CERTS'];

/** `*.example.com` in a host pattern is `.example.com` in NO_PROXY's convention. */
function noProxyEntry(pattern: string): string {
  return pattern.startsWith('*.') ? pattern.slice(1) : pattern.includes(':') ? `[${pattern}]` : pattern;
}

/**
 * The environment a sandbox needs: proxy variables in both cases (curl reads only lower-case
 * `http_proxy`), `NODE_USE_ENV_PROXY=1` (without it Node's built-in fetch and http clients ignore the
 * proxy variables and resolve the host themselves; Node 24 reads it, for `http.request` too from 24.5,
 * and older Node ignores it: docs/deployment.md), NO_PROXY from the
 * config's `no_proxy`, CA bundle variables, and every enabled rule's `env_vars` placeholders. Never a
 * secret: placeholders are what the sandbox holds instead.
 */
export function sandboxEnv(config: ProxyConfig, opts: SandboxEnvOptions): Array<[string, string]> {
  const env: Array<[string, string]> = [];
  for (const name of ['HTTPS_PROXY', 'HTTP_PROXY', 'https_proxy', 'http_proxy']) env.push([name, opts.proxyUrl]);
  env.push(['NODE_USE_ENV_PROXY', '1']);
  const noProxy = config.no_proxy.map(noProxyEntry).join(',');
  if (noProxy) env.push(['NO_PROXY', noProxy], ['no_proxy', noProxy]);
  for (const name of CA_VARIABLES) env.push([name, opts.caFile]);
  const seen = new Set(env.map(([k]) => k));
  for (const [k, v] of Object.entries(envVarPlaceholders(config, opts.caFile))) if (!seen.has(k)) env.push([k, v]);
  return env;
}

/** The default path of the CA bundle inside a sandbox (system roots + authproxy's CA). */
export const DEFAULT_SANDBOX_CA_FILE = '/etc/authproxy/ca-bundle.pem';

/**
 * Placeholder credentials for the cloud SDKs: format-valid (an SDK refuses to sign without keys that look
 * real) and obviously fake. authproxy replaces whatever they produce on the wire.
 */
export const AWS_PLACEHOLDER_KEY_ID = 'AKIAAUTHPROXYEXAMPLE';
export const AWS_PLACEHOLDER_SECRET = 'authproxy/placeholder/not/a/real/secret0';
export const GCP_PLACEHOLDER_TOKEN = 'authproxy-placeholder-token';
/** Base64 (as the Azure SDKs require of a key) of `authproxy/placeholder/not/a/real/azure/key`. */
export const AZURE_PLACEHOLDER_KEY = Buffer.from('authproxy/placeholder/not/a/real/azure/key').toString('base64');
/** A SAS-shaped placeholder: the SDKs append it, authproxy replaces it with the configured token. */
export const AZURE_PLACEHOLDER_SAS = 'sv=2025-01-05&sig=authproxy-placeholder';

/** The managed Azure variables: the account, and a placeholder key or SAS as the SDKs and the Azure CLI read them. */
function azureEnv(azure: { storage_account: string; account_key?: unknown }): Record<string, string> {
  const account = azure.storage_account;
  if (azure.account_key !== undefined) {
    const connection = `DefaultEndpointsProtocol=https;AccountName=${account};AccountKey=${AZURE_PLACEHOLDER_KEY};EndpointSuffix=core.windows.net`;
    return {
      AZURE_STORAGE_ACCOUNT: account,
      AZURE_STORAGE_KEY: AZURE_PLACEHOLDER_KEY,
      AZURE_STORAGE_CONNECTION_STRING: connection,
    };
  }
  const endpoints = ['Blob', 'Queue', 'File', 'Table']
    .map((s) => `${s}Endpoint=https://${account}.${s.toLowerCase()}.core.windows.net/`)
    .join(';');
  return {
    AZURE_STORAGE_ACCOUNT: account,
    AZURE_STORAGE_SAS_TOKEN: AZURE_PLACEHOLDER_SAS,
    AZURE_STORAGE_CONNECTION_STRING: `${endpoints};SharedAccessSignature=${AZURE_PLACEHOLDER_SAS}`,
  };
}

/** The variables an enabled provider rule manages: placeholder credentials and the CA bundle its SDK reads. */
function providerEnv(config: ProxyConfig, caFile: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const rule of config.rules) {
    if (!rule.enabled) continue;
    if (rule.type === 'aws')
      Object.assign(out, {
        AWS_ACCESS_KEY_ID: AWS_PLACEHOLDER_KEY_ID,
        AWS_SECRET_ACCESS_KEY: AWS_PLACEHOLDER_SECRET,
        AWS_EC2_METADATA_DISABLED: 'true',
        AWS_CA_BUNDLE: caFile,
      });
    if (rule.type === 'gcp')
      Object.assign(out, {
        CLOUDSDK_AUTH_ACCESS_TOKEN: GCP_PLACEHOLDER_TOKEN,
        CLOUDSDK_CORE_CUSTOM_CA_CERTS_FILE: caFile,
      });
    if (rule.type === 'azure') Object.assign(out, azureEnv(rule.azure));
  }
  return out;
}

/**
 * The AWS SDKs disagree on the region variable: botocore (boto3) reads only `AWS_DEFAULT_REGION`, the
 * JavaScript SDK v3 only `AWS_REGION` (the CLI v2 either). Whichever of the two the config sets, the
 * other gets the same value, unless the config sets both.
 */
const AWS_REGION_VARIABLES = ['AWS_REGION', 'AWS_DEFAULT_REGION'] as const;

/**
 * The `env_vars` of enabled rules plus the provider rules' managed variables (what the admin API's
 * `/env` returns): never a secret. The schema keeps rules from declaring a managed name themselves.
 * A region set as `AWS_REGION` or `AWS_DEFAULT_REGION` comes out under both names.
 */
export function envVarPlaceholders(config: ProxyConfig, caFile = DEFAULT_SANDBOX_CA_FILE): Record<string, string> {
  const out: Record<string, string> = providerEnv(config, caFile);
  for (const rule of config.rules) if (rule.enabled) for (const [k, v] of Object.entries(rule.env_vars)) out[k] ??= v;
  const region = AWS_REGION_VARIABLES.map((name) => out[name]).find((v) => v !== undefined);
  if (region !== undefined) for (const name of AWS_REGION_VARIABLES) out[name] ??= region;
  return out;
}

/** Formats variables as `export K='v'` lines (POSIX shell quoting), `K=v` lines or a JSON object. */
export function formatEnv(env: Array<[string, string]>, format: 'shell' | 'dotenv' | 'json'): string {
  if (format === 'json') return `${JSON.stringify(Object.fromEntries(env), null, 2)}\n`;
  if (format === 'dotenv') return env.map(([k, v]) => `${k}=${v}\n`).join('');
  return env.map(([k, v]) => `export ${k}='${v.replace(/'/g, `'\\''`)}'\n`).join('');
}
