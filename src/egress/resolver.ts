import { promises as dns } from 'node:dns';
import { AuthProxyError } from '../errors.js';
import { parseListenAddress } from '../sockets/listen.js';

/** Resolves a hostname to its IP addresses (both families); rejects when it has none. */
export interface HostResolver {
  resolve(host: string): Promise<readonly string[]>;
}

/** The system resolver (getaddrinfo: /etc/hosts, then DNS), as every other program on the host sees names. */
export const systemResolver: HostResolver = {
  async resolve(host) {
    const found = await dns.lookup(host, { all: true, verbatim: true });
    return found.map((a) => a.address);
  },
};

/**
 * A resolver that asks the given DNS server (`--dns-resolver host:port`) for A and AAAA records, for a
 * sidecar whose Envoy uses a resolver of its own (and for tests, whose names resolve only there).
 */
export function serverResolver(address: string): HostResolver {
  const parsed = parseListenAddress(address, '--dns-resolver');
  if (parsed.kind !== 'tcp') throw new AuthProxyError('usage', '--dns-resolver must be host:port');
  const resolver = new dns.Resolver({ timeout: 2000, tries: 2 });
  resolver.setServers([
    parsed.host.includes(':') ? `[${parsed.host}]:${parsed.port}` : `${parsed.host}:${parsed.port}`,
  ]);
  const family = (query: Promise<string[]>) =>
    query.catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENODATA' || err.code === 'ENOTFOUND') return [] as string[];
      throw err;
    });
  return {
    async resolve(host) {
      const [v4, v6] = await Promise.all([family(resolver.resolve4(host)), family(resolver.resolve6(host))]);
      const all = [...v4, ...v6];
      if (all.length === 0) throw Object.assign(new Error(`${host} has no address`), { code: 'ENOTFOUND' });
      return all;
    },
  };
}

/**
 * Remembers answers for a few seconds, so that the CONNECTs of one client (and the callbacks of one
 * burst) cost one lookup, while a changed record is seen soon. Failures are not remembered. Bounded.
 */
export class CachingResolver implements HostResolver {
  private readonly entries = new Map<string, { readonly at: number; readonly answer: Promise<readonly string[]> }>();

  constructor(
    private readonly inner: HostResolver,
    private readonly ttlMs = 5000,
    private readonly max = 10_000,
    private readonly clock: () => number = Date.now,
  ) {}

  resolve(host: string): Promise<readonly string[]> {
    const now = this.clock();
    const hit = this.entries.get(host);
    if (hit && now - hit.at < this.ttlMs) return hit.answer;
    const answer = this.inner.resolve(host);
    if (this.entries.size >= this.max) this.entries.clear();
    this.entries.set(host, { at: now, answer });
    answer.catch(() => this.entries.get(host)?.answer === answer && this.entries.delete(host));
    return answer;
  }
}
