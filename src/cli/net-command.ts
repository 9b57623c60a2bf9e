import { existsSync, readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import type { Command } from 'commander';
import { AuthProxyError } from '../errors.js';
import { applySteps, removeSteps, type CaptureSettings } from '../netcap/rules.js';
import { renderScript, runSteps } from '../netcap/run.js';
import { envOption } from './options.js';

interface NetFlags {
  listenerPort: string;
  envoyUid: string;
  dnsResolver?: string;
  apply?: string | true;
  remove?: string | true;
}

const usage = (message: string) => new AuthProxyError('usage', message);

/** `IP`, `IPv4:PORT` or `[IPv6]:PORT`, comma-separated; port 53 when none is given. */
function parseResolvers(text: string, flag: string): CaptureSettings['resolvers'] {
  return text
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map((raw) => {
      const m =
        isIP(raw) !== 0 ? [raw, raw] : (/^\[([^\]]+)\](?::(\d{1,5}))?$/.exec(raw) ?? /^([\d.]+):(\d{1,5})$/.exec(raw));
      const address = m?.[1] ?? '';
      const port = m?.[2] !== undefined && m[2] !== raw ? Number(m[2]) : 53;
      if (isIP(address) === 0 || port < 1 || port > 65535)
        throw usage(
          `${flag}: "${raw.slice(0, 64)}" is not an IP address with an optional port (1.2.3.4, 1.2.3.4:53, [fd00::a]:53)`,
        );
      return { address, port };
    });
}

/**
 * The resolv.conf a namespace's processes read: `ip netns exec NETNS` bind-mounts
 * /etc/netns/NETNS/resolv.conf over /etc/resolv.conf when it exists, so that file, not the host's, names
 * the sandbox's resolver. The current namespace (no NETNS) reads /etc/resolv.conf.
 */
export function resolvConfFor(netns: string | undefined, etc = '/etc'): string {
  const own = netns ? `${etc}/netns/${netns}/resolv.conf` : undefined;
  return own && existsSync(own) ? own : `${etc}/resolv.conf`;
}

/** The nameservers of that resolv.conf: the resolver the sandbox already uses, when --dns-resolver is not given. */
function systemResolvers(netns: string | undefined): string {
  const file = resolvConfFor(netns);
  let text = '';
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    /* no file: reported below */
  }
  const found = [...text.matchAll(/^\s*nameserver\s+(\S+)/gm)].map((m) => m[1]!.replace(/%.*$/, ''));
  if (found.length === 0) throw usage(`--dns-resolver: not given, and ${file} names no nameserver`);
  return found.join(',');
}

function settings(f: NetFlags, netns: string | undefined): CaptureSettings {
  const port = Number(f.listenerPort);
  if (!/^\d+$/.test(f.listenerPort) || port < 1 || port > 65535)
    throw usage(`--listener-port: "${f.listenerPort}" must be a port number (1-65535)`);
  const uid = Number(f.envoyUid);
  if (!/^\d+$/.test(f.envoyUid) || uid > 0xfffffffe) throw usage(`--envoy-uid: "${f.envoyUid}" must be a numeric uid`);
  if (uid === 0)
    throw usage('--envoy-uid: 0 would exempt every root process in the sandbox; run Envoy as a user of its own');
  const resolvers = parseResolvers(f.dnsResolver ?? systemResolvers(netns), '--dns-resolver');
  return { listenerPort: port, envoyUid: uid, resolvers };
}

function namespace(value: string | true | undefined, flag: string): string | undefined {
  if (value === undefined || value === true) return undefined;
  if (!/^[A-Za-z0-9_.-]{1,64}$/.test(value) || value.startsWith('.'))
    throw usage(`${flag}: "${value.slice(0, 64)}" is not a network namespace name (ip netns list)`);
  return value;
}

/**
 * `sandbox-net`: the packet rules of transparent mode. Printed by default (to review, or to run in an
 * init container), applied with `--apply [NETNS]` (that namespace, or the current one), undone with
 * `--remove [NETNS]`. Exists so that the rules Envoy's transparent listener relies on come from one place.
 */
export function registerNetCommand(program: Command): void {
  program
    .command('sandbox-net')
    .description(
      "print (or --apply / --remove) the iptables rules that redirect a network namespace's egress to the transparent listener",
    )
    .addOption(
      envOption(
        '--listener-port <port>',
        "Envoy's transparent listener port (envoy-config --mode transparent --proxy-port)",
        'AUTHPROXY_LISTENER_PORT',
      ).default('10000'),
    )
    .addOption(
      envOption(
        '--envoy-uid <uid>',
        'uid Envoy (and a co-located authproxy) runs as: its own traffic is not redirected',
        'AUTHPROXY_ENVOY_UID',
      ).default('101'),
    )
    .addOption(
      envOption(
        '--dns-resolver <addrs>',
        'DNS servers the sandbox may query directly, IP[:PORT] comma-separated (default: the nameservers of /etc/netns/NETNS/resolv.conf, else /etc/resolv.conf)',
        'AUTHPROXY_SANDBOX_DNS',
      ),
    )
    .option('--apply [netns]', 'apply the rules in that network namespace (default: the current one)')
    .option('--remove [netns]', 'remove the rules from that network namespace (default: the current one)')
    .action((f: NetFlags) => {
      if (f.apply !== undefined && f.remove !== undefined) throw usage('--apply and --remove: give one of them');
      const netns = f.apply !== undefined ? namespace(f.apply, '--apply') : namespace(f.remove, '--remove');
      const s = settings(f, netns);
      if (f.apply !== undefined) runSteps(applySteps(s), netns, '--apply');
      else if (f.remove !== undefined) runSteps(removeSteps(s), netns, '--remove');
      else process.stdout.write(renderScript(applySteps(s), 'transparent-mode egress capture'));
    });
}
