/**
 * The packet rules that capture a sandbox's egress for transparent mode, as data: iptables (nft-backed
 * or legacy) commands in chains of their own, so that applying them twice leaves the same rules (each
 * chain is flushed and refilled, each jump inserted only if missing) and removing them restores the
 * namespace exactly (jumps deleted, chains flushed and deleted).
 */
import { isIP } from 'node:net';

/** What the rules need to know about the sidecar. */
export interface CaptureSettings {
  /** Envoy's transparent listener port (`envoy-config --mode transparent --proxy-port`). */
  readonly listenerPort: number;
  /** Envoy's (and a co-located authproxy's) uid: its own connections leave unredirected. Never 0. */
  readonly envoyUid: number;
  /** DNS servers the sandbox may still query directly (UDP and TCP port `port`). */
  readonly resolvers: ReadonlyArray<{ readonly address: string; readonly port: number }>;
}

/** One command: the tool and its arguments. */
export interface RuleCommand {
  readonly tool: 'iptables' | 'ip6tables';
  readonly args: readonly string[];
}

/**
 * One step of applying or removing: `run` must succeed; `try` may fail (a chain that already exists, or
 * is already gone); `ensure` runs `check` and, only if that fails, `run` (a jump inserted once);
 * `repeat` runs until it fails (every copy of a jump deleted).
 */
export type RuleStep =
  | { readonly kind: 'run' | 'try' | 'repeat'; readonly command: RuleCommand }
  | { readonly kind: 'ensure'; readonly check: RuleCommand; readonly command: RuleCommand };

/** The chain authproxy owns in each table it touches. */
export const CHAIN = 'AUTHPROXY_OUTPUT';

interface TableRules {
  readonly tool: RuleCommand['tool'];
  readonly table: 'nat' | 'filter';
  /** Match of the jump from OUTPUT into the chain. */
  readonly jump: readonly string[];
  readonly rules: ReadonlyArray<readonly string[]>;
}

function tables(s: CaptureSettings): TableRules[] {
  const uid = ['-m', 'owner', '--uid-owner', String(s.envoyUid), '-j', 'RETURN'];
  const dns = (family: 4 | 6, protos: readonly string[]) =>
    s.resolvers
      .filter((r) => isIP(r.address) === family)
      .flatMap((r) => protos.map((p) => ['-p', p, '-d', r.address, '--dport', String(r.port), '-j', 'RETURN']));
  // Replies of connections the sandbox accepted (health probes, port forwards); its own outbound ones never match.
  const inboundReplies = ['-p', 'tcp', '-m', 'conntrack', '--ctdir', 'REPLY', '-j', 'RETURN'];
  return [
    {
      // Every outbound TCP connection goes to Envoy's listener, except Envoy's own, loopback and DNS.
      tool: 'iptables',
      table: 'nat',
      jump: ['-p', 'tcp'],
      rules: [
        uid,
        ['-o', 'lo', '-j', 'RETURN'],
        ...dns(4, ['tcp']),
        ['-p', 'tcp', '-j', 'REDIRECT', '--to-ports', String(s.listenerPort)],
      ],
    },
    {
      // What may leave: loopback, the redirected TCP (still routed out of the sandbox's interface at this
      // hook, so matched by its rewritten destination), Envoy's own traffic, DNS. UDP, ICMP and the rest drop.
      tool: 'iptables',
      table: 'filter',
      jump: [],
      rules: [
        ['-o', 'lo', '-j', 'RETURN'],
        [
          '-p',
          'tcp',
          '-d',
          '127.0.0.1',
          '--dport',
          String(s.listenerPort),
          '-m',
          'conntrack',
          '--ctstate',
          'DNAT',
          '-j',
          'RETURN',
        ],
        uid,
        inboundReplies,
        ...dns(4, ['udp', 'tcp']),
        ['-j', 'DROP'],
      ],
    },
    {
      // IPv6 is not captured but shut: TCP is refused at once (clients fall back to IPv4), the rest drops.
      // Neighbour discovery stays, or Envoy's own IPv6 could not reach its next hop.
      tool: 'ip6tables',
      table: 'filter',
      jump: [],
      rules: [
        ['-o', 'lo', '-j', 'RETURN'],
        uid,
        inboundReplies,
        ...['router-solicitation', 'neighbour-solicitation', 'neighbour-advertisement'].map((t) => [
          '-p',
          'ipv6-icmp',
          '--icmpv6-type',
          t,
          '-j',
          'RETURN',
        ]),
        ...dns(6, ['udp', 'tcp']),
        ['-p', 'tcp', '-j', 'REJECT', '--reject-with', 'tcp-reset'],
        ['-j', 'DROP'],
      ],
    },
  ];
}

const cmd = (tool: RuleCommand['tool'], table: string, ...args: string[]): RuleCommand => ({
  tool,
  args: ['-w', '-t', table, ...args],
});

/** The steps that capture the namespace's egress; safe to run again (same rules afterwards). */
export function applySteps(s: CaptureSettings): RuleStep[] {
  return tables(s).flatMap((t): RuleStep[] => [
    { kind: 'try', command: cmd(t.tool, t.table, '-N', CHAIN) },
    { kind: 'run', command: cmd(t.tool, t.table, '-F', CHAIN) },
    ...t.rules.map((r): RuleStep => ({ kind: 'run', command: cmd(t.tool, t.table, '-A', CHAIN, ...r) })),
    {
      kind: 'ensure',
      check: cmd(t.tool, t.table, '-C', 'OUTPUT', ...t.jump, '-j', CHAIN),
      command: cmd(t.tool, t.table, '-I', 'OUTPUT', '1', ...t.jump, '-j', CHAIN),
    },
  ]);
}

/** The steps that undo `applySteps`; safe to run when nothing (or only part) was applied. */
export function removeSteps(s: CaptureSettings): RuleStep[] {
  return tables(s).flatMap((t): RuleStep[] => [
    { kind: 'repeat', command: cmd(t.tool, t.table, '-D', 'OUTPUT', ...t.jump, '-j', CHAIN) },
    { kind: 'try', command: cmd(t.tool, t.table, '-F', CHAIN) },
    { kind: 'try', command: cmd(t.tool, t.table, '-X', CHAIN) },
  ]);
}
