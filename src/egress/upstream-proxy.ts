import { isIP } from 'node:net';
import { AuthProxyError } from '../errors.js';
import { NoProxyList } from './no-proxy-list.js';
import type { UpstreamVia } from '../contracts/engine.js';

/** `--upstream-proxy`, parsed: a corporate forward proxy that every egress connection goes through. */
export interface UpstreamProxyUrl {
  /** `http` (plain TCP to the proxy) or `https` (TLS to the proxy, verified against the CA bundle). */
  readonly scheme: 'http' | 'https';
  /** Hostname or IP address (IPv6 without brackets). */
  readonly host: string;
  readonly port: number;
  /** The normalised URL, `scheme://host:port` (IPv6 in brackets). */
  readonly url: string;
}

const bad = (why: string) => new AuthProxyError('usage', `--upstream-proxy: ${why}`);

/**
 * Parses `--upstream-proxy URL`: `http://` or `https://`, a host and an explicit port, nothing else (no
 * credentials: a proxy that wants them is out of scope and a password on a command line leaks; no path,
 * query or fragment). Errors are one line naming the flag and never echo the URL (it may hold a password).
 */
export function parseUpstreamProxy(text: string): UpstreamProxyUrl {
  let url: URL;
  try {
    url = new URL(text.trim());
  } catch {
    throw bad('must be a URL like http://proxy.corp.example:3128');
  }
  const scheme = url.protocol.slice(0, -1);
  if (scheme !== 'http' && scheme !== 'https') throw bad(`scheme "${scheme.slice(0, 16)}" must be http or https`);
  if (url.username !== '' || url.password !== '')
    throw bad('must not contain credentials (user:password@); authproxy does not authenticate to the proxy');
  if (url.hostname === '') throw bad('has no host');
  // URL drops a port equal to the scheme's default, so the text itself is checked for one.
  const explicitPort = /^[a-z]+:\/\/(\[[^\]]*\]|[^/:?#]*):(\d+)(?:[/?#]|$)/i.exec(text.trim());
  if (!explicitPort) throw bad('must name a port, like http://proxy.corp.example:3128');
  const port = Number(explicitPort[2]);
  if (!(port >= 1 && port <= 65535)) throw bad('port must be 1..65535');
  if ((url.pathname !== '/' && url.pathname !== '') || url.search !== '' || url.hash !== '')
    throw bad('must not have a path, query or fragment');
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  const shown = isIP(host) === 6 ? `[${host}]` : host;
  return { scheme, host, port, url: `${scheme}://${shown}:${port}` };
}

/** How one destination leaves: `direct` (dialled at the checked address), `proxy`, or `proxy_connect` (see `via`). */
export type { UpstreamVia } from '../contracts/engine.js';

/**
 * Where egress goes when a network only allows it through a forward proxy: `--upstream-proxy` and
 * `--upstream-no-proxy` together. The same object decides for Envoy (per CONNECT, through the engine's
 * route answer) and for authproxy's own clients (callbacks, STS, token endpoints), so both agree.
 */
export class UpstreamRoute {
  constructor(
    /** Undefined: no proxy here (this process was given only `--upstream-no-proxy`): everything is direct. */
    readonly proxy: UpstreamProxyUrl | undefined,
    readonly noProxy: NoProxyList,
  ) {}

  /** From the flags; undefined when neither is given (egress is direct, as without this feature). */
  static fromFlags(proxy: string | undefined, noProxy: string | undefined): UpstreamRoute | undefined {
    if (!proxy && !noProxy) return undefined;
    return new UpstreamRoute(proxy ? parseUpstreamProxy(proxy) : undefined, NoProxyList.parse(noProxy ?? ''));
  }

  /** Whether authproxy's own client dials `host:port` directly (`address`: what the guard checked). */
  direct(host: string, port: number, address?: string): boolean {
    return this.proxy === undefined || this.noProxy.matches(host, port, address);
  }

  /**
   * How Envoy sends one decided connection: `direct` for `--upstream-no-proxy` destinations, else through
   * the proxy — `proxy` (a CONNECT for a tunnel or an intercepted host, absolute-form for plain HTTP), or
   * `proxy_connect` for plain HTTP to an IP address, which goes as `CONNECT ip:port` (proxies that take
   * absolute-form requests by name often refuse them for bare addresses).
   */
  via(host: string, port: number, address: string | undefined, method: string): UpstreamVia {
    if (this.noProxy.matches(host, port, address)) return 'direct';
    const bare = host.replace(/^\[(.*)\]$/, '$1');
    return method !== 'CONNECT' && isIP(bare) !== 0 ? 'proxy_connect' : 'proxy';
  }
}
