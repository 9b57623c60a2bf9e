import type { ClientRequestArgs } from 'node:http';
import { Agent, type AgentOptions } from 'node:https';
import { isIP, type LookupFunction } from 'node:net';
import type { Duplex } from 'node:stream';
import { connect as tlsConnect } from 'node:tls';
import type { EgressGuard } from '../../egress/guard.js';
import { guardedLookup } from '../../egress/lookup.js';
import { openProxyTunnel } from '../../egress/proxy-tunnel.js';
import type { UpstreamRoute } from '../../egress/upstream-proxy.js';

/** Why an outbound call of authproxy's own (a token or STS endpoint) was not made: the guard refused its host. */
export class EgressRefusedError extends Error {
  readonly code = 'EAUTHPROXY_EGRESS';
}

/**
 * A keep-alive `node:https` Agent whose connections resolve through the egress guard and dial exactly the
 * address it checked (certificates are still verified against the hostname). Exists for the cloud SDK
 * clients authproxy runs itself (the AWS SDK's NodeHttpHandler takes an `httpsAgent`; gaxios takes an
 * `agent`), so they are pinned like callbacks. Without a guard: a plain keep-alive agent. With the guard's
 * `--upstream-proxy`, hosts outside `--upstream-no-proxy` are checked by the guard, then reached through a
 * `CONNECT host:port` tunnel (TLS to the origin inside it, verified as usual).
 */
export function guardedHttpsAgent(guard: EgressGuard | undefined): Agent {
  if (!guard) return new Agent({ keepAlive: true });
  const options = {
    keepAlive: true,
    lookup: guardedLookup(guard, (reason) => new EgressRefusedError(`host ${reason}`)) as unknown as LookupFunction,
  };
  return guard.upstream?.proxy ? new TunnellingAgent(guard, guard.upstream, options) : new Agent(options);
}

/** The https Agent of `--upstream-proxy`: direct (pinned) dials for no-proxy hosts, CONNECT tunnels for the rest. */
class TunnellingAgent extends Agent {
  constructor(
    private readonly guard: EgressGuard,
    private readonly route: UpstreamRoute,
    options: AgentOptions,
  ) {
    super(options);
  }

  override createConnection(
    options: ClientRequestArgs,
    callback?: (err: Error | null, stream: Duplex) => void,
  ): Duplex | null | undefined {
    const host = (options.hostname ?? options.host ?? 'localhost').replace(/^\[(.*)\]$/, '$1');
    const port = Number(options.port ?? 443);
    if (this.route.direct(host, port)) return super.createConnection(options, callback);
    const done = callback ?? (() => {});
    this.tunnel(host, port, options).then(
      (socket) => done(null, socket),
      (err: Error) => done(err, undefined as unknown as Duplex),
    );
    return undefined;
  }

  private async tunnel(host: string, port: number, options: ClientRequestArgs): Promise<Duplex> {
    // The proxy resolves the name itself; the guard still refuses one that resolves to a private address.
    const checked = await this.guard.check(host);
    if (!checked.ok)
      throw new EgressRefusedError(`host ${checked.reason === 'unresolvable' ? 'does not resolve' : checked.detail}`);
    const raw = await openProxyTunnel(this.route.proxy!, host, port);
    const tlsOptions = options as ClientRequestArgs & {
      servername?: string;
      ca?: string | Buffer | Array<string | Buffer>;
      rejectUnauthorized?: boolean;
    };
    const servername = tlsOptions.servername ?? (isIP(host) === 0 ? host : undefined);
    return tlsConnect({
      socket: raw,
      host,
      servername,
      ca: tlsOptions.ca,
      rejectUnauthorized: tlsOptions.rejectUnauthorized ?? true,
      ALPNProtocols: ['http/1.1'],
    });
  }
}
