/**
 * Property tests of the access_control entry parser and of the decision:
 * - `parseAccessEntry` never throws, returns an entry or a bounded one-line problem, and its canonical
 *   forms round-trip (canonicalising is idempotent, a formatted entry parses back to itself);
 * - the decision never lets a rule (or callback) match a host its patterns don't cover, always picks the
 *   first enabled rule that covers host and path, and refuses or passes otherwise, compared with a simple
 *   reference matcher written here.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { canonicalAccessEntry, parseAccessEntry, type AccessEntry } from '../../src/config/access-pattern.js';
import { compilePolicy } from '../../src/config/compile.js';
import { validateConfig } from '../../src/config/load.js';
import { AccessList } from '../../src/policy/access.js';
import { decide } from '../../src/policy/decide.js';
import { fuzz, fuzzTimeout, hostileString } from '../helpers/fuzz.js';

// ---- access_control entries ----

const HOSTS = [
  'api.github.com',
  'API.GitHub.COM',
  'github.com',
  'a.b.example.org',
  'localhost',
  'x',
  'a..b',
  '-a.com',
  'a-.com',
  'é.com',
  'xn--p1ai.example',
  '1.2.3',
  '1.2.3.999',
  '0x7f.1',
  '*',
  '*.github.com',
  '*.com',
  '*.co.uk',
  '*.github.io',
  '*.*.com',
  'a*.com',
  '*.',
  '*.1.2',
];
const PORTS = [
  '',
  ':',
  ':0',
  ':1',
  ':22',
  ':443',
  ':65535',
  ':65536',
  ':99999',
  ':0443',
  ':-1',
  ':+1',
  ':1e3',
  ':a',
  '::',
  ':22:22',
];
const entryText = fc.oneof(
  { weight: 4, arbitrary: fc.tuple(fc.constantFrom(...HOSTS), fc.constantFrom(...PORTS)).map(([h, p]) => h + p) },
  { weight: 1, arbitrary: fc.tuple(fc.ipV4(), fc.constantFrom(...PORTS)).map(([h, p]) => h + p) },
  { weight: 1, arbitrary: fc.tuple(fc.ipV6(), fc.constantFrom('', ':22')).map(([h, p]) => h + p) },
  { weight: 1, arbitrary: fc.tuple(fc.ipV6(), fc.constantFrom(...PORTS)).map(([h, p]) => `[${h}]${p}`) },
  {
    weight: 1,
    arbitrary: fc
      .tuple(fc.oneof(fc.ipV4(), fc.ipV6()), fc.integer({ min: -1, max: 200 }), fc.constantFrom('', ':443'))
      .map(([a, bits, p]) => `${a}/${bits}${p}`),
  },
  {
    weight: 1,
    arbitrary: fc.constantFrom(
      '[::1',
      '[::1]]',
      '[1.2.3.4]:1',
      '[fe80::1%eth0]',
      'fe80::1%eth0',
      '::1%1',
      '10.0.0.0/8/8',
      '/8',
      '10.0.0.0/',
      '::/0',
      '0.0.0.0/0',
      'user@host.com',
      'host.com/path',
      ' host.com',
      'host.com ',
      '',
    ),
  },
  {
    weight: 2,
    arbitrary: fc
      .oneof(
        hostileString,
        fc.constantFrom(
          '(',
          '[',
          '(?=x)',
          '\\',
          'a{1000}{1000}',
          '(a*)*b',
          '^api\\.github\\.com$',
          '.*',
          '\\p{Greek}',
          '\\C',
          'x'.repeat(300),
        ),
      )
      .map((r) => `~${r}`),
  },
  { weight: 2, arbitrary: hostileString },
);

/** The canonical text of a parsed entry. */
function formatEntry(e: AccessEntry): string {
  const port = 'port' in e && e.port !== undefined ? `:${e.port}` : '';
  switch (e.kind) {
    case 'host':
      return e.host + port;
    case 'suffix':
      return `*.${e.domain}${port}`;
    case 'any':
      return `*${port}`;
    case 'regex':
      return `~${e.source}`;
    case 'ip':
      return e.family === 6 && port ? `[${e.address}]${port}` : e.address + port;
    case 'cidr':
      return `${e.address}/${e.prefix}`;
  }
}
/** An entry without its compiled regex object, for comparison. */
const plain = (e: AccessEntry) => (e.kind === 'regex' ? { kind: e.kind, source: e.source } : e);

describe('access_control entry parser, fuzzed', () => {
  it(
    'never throws; answers an entry or a bounded one-line problem; canonical forms round-trip',
    async () => {
      await fuzz(
        'parseAccessEntry: total, bounded, round-trips',
        4000,
        fc.property(entryText, (raw) => {
          const result = parseAccessEntry(raw);
          if (!result.ok) {
            expect(typeof result.problem).toBe('string');
            expect(result.problem).not.toMatch(/[\r\n\u0000]/);
            expect(result.problem.length).toBeLessThan(400);
            // A refused entry stays refused in its canonical form (lower-casing never makes one valid).
            expect(parseAccessEntry(canonicalAccessEntry(raw)).ok).toBe(false);
            return;
          }
          const canonical = canonicalAccessEntry(raw);
          expect(canonicalAccessEntry(canonical)).toBe(canonical);
          const again = parseAccessEntry(canonical);
          expect(again.ok).toBe(true);
          if (!again.ok) return;
          expect(plain(again.entry)).toEqual(plain(result.entry));
          const formatted = parseAccessEntry(formatEntry(result.entry));
          expect(formatted.ok).toBe(true);
          if (formatted.ok) expect(plain(formatted.entry)).toEqual(plain(result.entry));
          // A compiled list never throws on lookups, whatever the host.
          const list = new AccessList([result.entry]);
          for (const host of ['api.github.com', '127.0.0.1', '::1', '2130706433', 'x']) {
            expect(typeof list.matches(host, 443)).toBe('boolean');
            expect(typeof list.matchesOnSomePort(host)).toBe('boolean');
          }
        }),
      );
    },
    fuzzTimeout(1500),
  );
});

// ---- the decision ----

const TLDS = ['com', 'org'];
const LABELS = ['a', 'b', 'api', 'x'];
/** Hostnames over a tiny alphabet, so that patterns and hosts often collide. */
const hostname = fc
  .tuple(fc.array(fc.constantFrom(...LABELS), { minLength: 1, maxLength: 3 }), fc.constantFrom(...TLDS))
  .map(([labels, tld]) => [...labels, tld].join('.'));
/** A host pattern: exact, or `*.` and a domain of at least two labels (never a public suffix here). */
const hostPattern = fc.oneof(
  hostname,
  fc
    .tuple(fc.array(fc.constantFrom(...LABELS), { minLength: 1, maxLength: 2 }), fc.constantFrom(...TLDS))
    .map(([labels, tld]) => `*.${[...labels, tld].join('.')}`),
);
const pathPattern = fc.constantFrom('/*', '/a', '/a/*', '/b?', '*', '/x/*/y', '*/b', '/a/**');

const ruleSpec = fc.record({
  hosts: fc.array(hostPattern, { minLength: 1, maxLength: 3 }),
  paths: fc.array(pathPattern, { maxLength: 2 }),
  enabled: fc.boolean(),
});

/** The reference matcher: exact equality, or `*.d` for names strictly below `d`. */
const covers = (pattern: string, host: string) =>
  pattern.startsWith('*.') ? host.endsWith(pattern.slice(1)) && host.length > pattern.length - 1 : host === pattern;
const coversAny = (patterns: readonly string[], host: string) => patterns.some((p) => covers(p, host));
const globMatch = (pattern: string, path: string) =>
  new RegExp(
    `^${pattern
      .replace(/[.+^${}()|[\]\\/-]/g, '\\$&')
      .replace(/\*/g, '.*')
      .replace(/\?/g, '.')}$`,
    's',
  ).test(path);
/**
 * The reference for `match_paths` (LangSmith's forms, else the glob): `*` everything; no wildcard exact;
 * `P/*` or `P/**` with P free of wildcards "starts with P"; `* /E` (no space) with E free of them "ends with E".
 */
const pathMatch = (pattern: string, path: string) => {
  const wild = (x: string) => /[*?]/.test(x);
  if (pattern === '*') return true;
  if (!wild(pattern)) return pattern === path;
  const prefix = /^(.*)\/\*\*?$/s.exec(pattern)?.[1];
  if (prefix !== undefined && !wild(prefix)) return path.startsWith(prefix);
  if (pattern.startsWith('*/') && !wild(pattern.slice(2))) return path.endsWith(pattern.slice(2));
  return globMatch(pattern, path);
};

describe('decision, fuzzed', () => {
  it(
    'a rule never matches a host its patterns do not cover; the first covering enabled rule wins; else a callback; else pass',
    async () => {
      const input = fc.record({
        rules: fc.array(ruleSpec, { maxLength: 5 }),
        callbacks: fc.array(fc.array(hostPattern, { minLength: 1, maxLength: 2 }), { maxLength: 2 }),
        noProxy: fc.array(hostPattern, { maxLength: 1 }),
        host: fc.oneof(
          hostname,
          fc.tuple(hostname, fc.constantFrom('.', ':443', ':8443', '.:443')).map(([h, s]) => h + s),
          fc.constantFrom('API.A.COM', 'a.com@b.com', ''),
        ),
        path: fc.constantFrom('/', '/a', '/a/b', '/b1', '/x/q/y', '/a/../b', '/a//../b', '/%61', '/a?x', ''),
        scheme: fc.constantFrom('https', 'https', 'http'),
      });
      const outcomes = new Set<string>();
      await fuzz(
        'decide: matches only covered hosts, first match wins',
        2000,
        fc.property(input, (t) => {
          const config = validateConfig(
            {
              rules: t.rules.map((r, i) => ({
                name: `r${i}`,
                enabled: r.enabled,
                match_hosts: r.hosts,
                match_paths: r.paths,
                headers: [{ name: 'X-Rule', type: 'plaintext', value: `r${i}` }],
              })),
              callbacks: t.callbacks.map((hosts, i) => ({
                match_hosts: hosts,
                url: `https://cb${i}.example.net/`,
                ttl_seconds: 60,
              })),
              no_proxy: t.noProxy,
            },
            'FUZZ',
          );
          const policy = compilePolicy(config, { secrets: new Map(), unsealer: undefined });
          const d = decide(policy, { method: 'GET', scheme: t.scheme, authority: t.host, path: t.path });
          outcomes.add(d.outcome);
          const target = d.target;
          if (d.outcome === 'inject') {
            const rule = t.rules[d.rule.position]!;
            expect(rule.enabled).toBe(true);
            expect(coversAny(rule.hosts, d.target.host)).toBe(true);
            expect(t.scheme).toBe('https');
          }
          if (d.outcome === 'callback') expect(coversAny(t.callbacks[d.callback.position]!, d.target.host)).toBe(true);
          // The reference decision, for well-formed hosts.
          if (target === undefined) {
            expect(d.outcome).toBe('pass');
            return;
          }
          const host = target.host;
          if (coversAny(t.noProxy, host)) {
            expect(d).toMatchObject({ outcome: 'pass', reason: 'no_proxy' });
            return;
          }
          const named =
            t.rules.some((r) => r.enabled && coversAny(r.hosts, host)) || t.callbacks.some((c) => coversAny(c, host));
          if (!named) {
            expect(d).toMatchObject({ outcome: 'pass', reason: 'no_match' });
            return;
          }
          if (t.scheme !== 'https') {
            expect(d).toMatchObject({ outcome: 'refuse', status: 403, reason: 'cleartext' });
            return;
          }
          const raw = t.path.split(/[?#]/)[0] || '/';
          // Refused by the normaliser itself (empty and dot segments together): nothing to compare.
          if (d.outcome === 'pass' && d.reason === 'ambiguous_path' && raw === '/a//../b') return;
          // The upstream routes on the raw path: a rule with match_paths matches only a path that is already normal.
          const normal = raw !== '/%61' && raw !== '/a/../b';
          const first = t.rules.findIndex(
            (r) =>
              r.enabled &&
              coversAny(r.hosts, host) &&
              (r.paths.length === 0 || (normal && r.paths.some((p) => pathMatch(p, raw)))),
          );
          if (first >= 0) {
            expect(d.outcome).toBe('inject');
            if (d.outcome === 'inject') expect(d.rule.position).toBe(first);
            return;
          }
          const cb = t.callbacks.findIndex((c) => coversAny(c, host));
          if (cb >= 0) {
            expect(d.outcome).toBe('callback');
            if (d.outcome === 'callback') expect(d.callback.position).toBe(cb);
          } else {
            const skipped = !normal && t.rules.some((r) => r.enabled && coversAny(r.hosts, host) && r.paths.length > 0);
            expect(d).toMatchObject({ outcome: 'pass', reason: skipped ? 'ambiguous_path' : 'no_match' });
          }
        }),
      );
      // The generator reaches every outcome, so the comparison above is not vacuous.
      expect([...outcomes].sort()).toEqual(['callback', 'inject', 'pass', 'refuse']);
    },
    fuzzTimeout(1500),
  );

  it(
    'access_control: an allow_list reaches only listed hosts, a deny_list never reaches a listed one (same reference matcher)',
    async () => {
      const input = fc.record({
        allow: fc.boolean(),
        entries: fc.array(hostPattern, { minLength: 1, maxLength: 3 }),
        rule: fc.array(hostPattern, { minLength: 1, maxLength: 2 }),
        host: hostname,
      });
      await fuzz(
        'decide: access_control against a reference',
        2000,
        fc.property(input, (t) => {
          const config = validateConfig(
            {
              rules: [{ name: 'r', match_hosts: t.rule, headers: [{ name: 'X-Rule', type: 'plaintext', value: 'r' }] }],
              access_control: t.allow ? { allow_list: t.entries } : { deny_list: t.entries },
            },
            'FUZZ',
          );
          const d = decide(compilePolicy(config, { secrets: new Map(), unsealer: undefined }), {
            method: 'GET',
            scheme: 'https',
            authority: t.host,
            path: '/',
          });
          const listed = coversAny(t.entries, t.host);
          if (listed !== t.allow) expect(d).toMatchObject({ outcome: 'refuse', status: 403, reason: 'access_denied' });
          else expect(d.outcome).toBe(coversAny(t.rule, t.host) ? 'inject' : 'pass');
        }),
      );
    },
    fuzzTimeout(1500),
  );
});
