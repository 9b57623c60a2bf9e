import { isIP } from 'node:net';
import { RE2JS, RE2JSSyntaxException } from 're2js';
import { hostPatternProblem, q } from './host-pattern.js';

/**
 * The entry syntax of `access_control.allow_list` / `deny_list` (contract, Matching step 6), as a pure
 * parser. Exists so that schema validation (which reports problems by field) and compilation (which builds
 * the per-request matcher) read entries the same way.
 */

/** The longest regex (the part after `~`) an entry may hold: keeps compile cost and memory bounded. */
export const MAX_ACCESS_REGEX_LENGTH = 256;

/** One parsed entry. `port` undefined means every port. Hostname kinds match only hostnames, IP kinds only IP literals. */
export type AccessEntry =
  /** `host` or `host:PORT`: exactly this hostname (lower-case). */
  | { readonly kind: 'host'; readonly host: string; readonly port: number | undefined }
  /** `*.domain` or `*.domain:PORT`: any name below `domain`, never `domain` itself. */
  | { readonly kind: 'suffix'; readonly domain: string; readonly port: number | undefined }
  /** `*` or `*:PORT`: every hostname (no IP literal). */
  | { readonly kind: 'any'; readonly port: number | undefined }
  /** `~regex`: an unanchored RE2 search over the lower-cased hostname, every port. Compiled once, here. */
  | { readonly kind: 'regex'; readonly source: string; readonly regex: RE2JS }
  /** An IPv4 or IPv6 literal, with or without a port (`1.2.3.4:443`, `[::1]:22`). */
  | { readonly kind: 'ip'; readonly address: string; readonly family: 4 | 6; readonly port: number | undefined }
  /** A CIDR (`10.0.0.0/8`, `fd00::/8`): every address in it, every port. */
  | { readonly kind: 'cidr'; readonly address: string; readonly prefix: number; readonly family: 4 | 6 };

/** What parsing one entry gives: the entry, or why it is invalid (a message that never echoes a huge value). */
export type AccessEntryResult =
  | { readonly ok: true; readonly entry: AccessEntry }
  | { readonly ok: false; readonly problem: string };

const EXPECTED =
  'expected host, host:PORT, *.domain, *.domain:PORT, *, *:PORT, ~regex, an IP address (with or without a port) or a CIDR';

/** `value` in quotes, cut to about 80 characters so that an error never carries a huge value, control characters escaped. */
function echo(value: string): string {
  return q(value);
}

const fail = (problem: string): AccessEntryResult => ({ ok: false, problem });
const ok = (entry: AccessEntry): AccessEntryResult => ({ ok: true, entry });

/**
 * Parses one access_control entry. Regexes are compiled here (RE2 syntax, linear-time matching), so an
 * invalid one is a config error and a valid one is never compiled per request.
 */
export function parseAccessEntry(raw: string): AccessEntryResult {
  if (raw.length === 0 || raw !== raw.trim())
    return fail('must be a non-empty entry without leading or trailing spaces');
  if (raw.startsWith('~')) return parseRegex(raw);
  const lower = raw.toLowerCase();
  if (lower.includes('/')) return parseCidr(raw, lower);
  if (lower.startsWith('[')) {
    const m = /^\[([^\]]*)\](?::(.*))?$/.exec(lower);
    if (!m || isIP(m[1]!) !== 6)
      return fail(`${echo(raw)} is not a valid access_control entry: only an IPv6 address goes in brackets`);
    return ipEntry(raw, m[1]!, 6, m[2]);
  }
  const family = isIP(lower);
  if (family !== 0) return ipEntry(raw, lower, family as 4 | 6, undefined);
  const colon = lower.indexOf(':');
  if (colon >= 0 && lower.indexOf(':', colon + 1) >= 0) {
    if (isIP(lower.slice(0, lower.lastIndexOf(':'))) === 6)
      return fail(`${echo(raw)} is ambiguous: write an IPv6 address with a port in brackets, as in "[::1]:22"`);
    return fail(`${echo(raw)} is not a valid access_control entry: ${EXPECTED}`);
  }
  const host = colon < 0 ? lower : lower.slice(0, colon);
  const portText = colon < 0 ? undefined : lower.slice(colon + 1);
  if (isIP(host) === 4) return ipEntry(raw, host, 4, portText);
  if (host.length === 0 || /[@?#\\\s]/.test(host))
    return fail(`${echo(raw)} is not a valid access_control entry: ${EXPECTED}`);
  const port = parsePort(raw, portText);
  if (typeof port === 'string') return fail(port);
  if (host === '*') return ok({ kind: 'any', port });
  if (!host.startsWith('*.') && /^\d+$/.test(host.slice(host.lastIndexOf('.') + 1))) {
    return fail(`${echo(raw)} looks like an IP address but is not a valid one`);
  }
  const problem = hostPatternProblem(host, false);
  if (problem) return fail(problem.split(`"${host}"`).join(echo(host)));
  return host.startsWith('*.') ? ok({ kind: 'suffix', domain: host.slice(2), port }) : ok({ kind: 'host', host, port });
}

function parseRegex(raw: string): AccessEntryResult {
  const source = raw.slice(1);
  if (source.length === 0) return fail('"~" has an empty regex (use "*" to match every hostname)');
  if (source.length > MAX_ACCESS_REGEX_LENGTH) {
    return fail(
      `${echo(raw)} is too long: a regex may have at most ${MAX_ACCESS_REGEX_LENGTH} characters (this one has ${source.length})`,
    );
  }
  try {
    return ok({ kind: 'regex', source, regex: RE2JS.compile(source) });
  } catch (err) {
    const why = err instanceof RE2JSSyntaxException ? err.getDescription() : 'it cannot be compiled';
    return fail(`${echo(raw)} is not a valid RE2 regex: ${why}`);
  }
}

function parseCidr(raw: string, lower: string): AccessEntryResult {
  const bare = lower.startsWith('[') ? lower.replace(/[[\]]/g, '') : lower;
  const slash = bare.lastIndexOf('/');
  const address = bare.slice(0, slash);
  const bits = bare.slice(slash + 1);
  const family = isIP(address);
  if (family === 0 || address.includes('%'))
    return fail(`${echo(raw)} is not a valid access_control entry: ${EXPECTED}`);
  if (/^\d+:/.test(bits))
    return fail(`${echo(raw)} is a CIDR with a port: a CIDR matches every port, so drop the ":PORT"`);
  const max = family === 4 ? 32 : 128;
  if (!/^\d{1,3}$/.test(bits) || Number(bits) > max) {
    return fail(`${echo(raw)} is not a valid CIDR: the prefix length of an IPv${family} CIDR is 0..${max}`);
  }
  return ok({ kind: 'cidr', address, prefix: Number(bits), family: family as 4 | 6 });
}

function ipEntry(raw: string, address: string, family: 4 | 6, portText: string | undefined): AccessEntryResult {
  if (address.includes('%')) return fail(`${echo(raw)} has an IPv6 zone id, which access_control does not support`);
  const port = parsePort(raw, portText);
  return typeof port === 'string' ? fail(port) : ok({ kind: 'ip', address, family, port });
}

/** The port of `host:PORT`, undefined for none, or a problem message. */
function parsePort(raw: string, text: string | undefined): number | undefined | string {
  if (text === undefined) return undefined;
  if (!/^\d+$/.test(text)) return `${echo(raw)} has a port that is not a number (expected 1..65535)`;
  const port = text.length > 5 ? Infinity : Number(text);
  if (port < 1 || port > 65535) return `${echo(raw)} has a port outside 1..65535`;
  return port;
}

/**
 * The form an entry is stored in after validation: lower-cased, except a `~regex`, which is kept as written
 * (lower-casing would change its meaning: `\D` is not `\d`).
 */
export function canonicalAccessEntry(raw: string): string {
  return raw.startsWith('~') ? raw : raw.toLowerCase();
}
