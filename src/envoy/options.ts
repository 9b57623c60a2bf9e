import type { AuthproxyTls } from './clusters.js';
import type { UpstreamProxyUrl } from '../egress/upstream-proxy.js';

/** What `authproxy envoy-config` needs to render a sidecar's bootstrap. */
export interface BootstrapOptions {
  /** Address the sandbox's HTTP(S)_PROXY points at. */
  readonly proxyAddress: string;
  readonly proxyPort: number;
  /** Envoy admin interface on 127.0.0.1; omitted when undefined (sandbox code could reach it). */
  readonly adminPort?: number;
  /** authproxy's ext_proc + SDS address: `unix:/path` or `host:port` (then `authproxyTls` is required). */
  readonly authproxy: string;
  readonly authproxyTls?: AuthproxyTls;
  /** PEM bundle that upstream servers are verified against. */
  readonly caBundle: string;
  readonly sandboxId: string;
  /** Optional `host:port` of a DNS server (tests); otherwise c-ares reads /etc/resolv.conf. */
  readonly dnsResolver?: string;
  /** ext_proc per-message timeout; must exceed authproxy's callback timeout. */
  readonly messageTimeoutMs: number;
  /** When set, the only header names authproxy may set (strict allow-list); else any non-reserved header. */
  readonly credentialHeaders?: readonly string[];
  /** `--upstream-proxy`: egress leaves through this forward proxy unless authproxy answers `direct` (src/envoy/upstream-proxy.ts). */
  readonly upstreamProxy?: UpstreamProxyUrl;
}
