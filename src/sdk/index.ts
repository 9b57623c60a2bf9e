/**
 * authproxy's TypeScript SDK: `import { AuthProxyClient, configureGithubProxy } from 'authproxy'`.
 * A client of the admin API of a shared authproxy service, typed from the proxy_config schema, with
 * helpers for the common credential rules. Imports nothing at run time besides its own files.
 */
export { AuthProxyClient, AuthProxyApiError, type AuthProxyClientOptions, type WriteOptions } from './client.js';
export { plaintext, workspaceSecret, opaqueSecret } from './headers.js';
export {
  githubProxyRules,
  configureGithubProxy,
  mergeGithubRules,
  GITHUB_API_RULE,
  GITHUB_GIT_RULE,
} from './github.js';
export { DEFAULT_RETRY, isRetryableStatus, retryAfterMs, type RetryOptions } from './retry.js';
export type {
  ApiErrorBody,
  CallbackHeaderInput,
  HeaderInput,
  OpaqueHeaderKept,
  OpaqueHeaderView,
  ProxyConfigPatch,
  ProxyConfigView,
  ProxyConfigWrite,
  SandboxConfigResponse,
  SandboxAddressResponse,
  SandboxEnvResponse,
  SandboxLink,
  SandboxLinksResponse,
  VisibleHeaderView,
} from './types.js';
