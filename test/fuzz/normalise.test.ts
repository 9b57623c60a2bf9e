/**
 * Property tests of the host and path normalisers and the path-pattern matcher (contract, Matching steps
 * 1, 3 and 4): idempotence, the shape of every normalised value, agreement with independent readings (the
 * WHATWG URL parser's dot-segment resolution, with and without merged slashes), no escape from a prefix,
 * and the pattern matcher against a tiny reference glob.
 */
import { isIP } from 'node:net';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isHostname } from '../../src/config/host-pattern.js';
import { normaliseAuthority, type Target } from '../../src/policy/host.js';
import { normalisePath } from '../../src/policy/path.js';
import { compilePathPattern } from '../../src/policy/path-pattern.js';
import { fuzz, fuzzTimeout, hostileString } from '../helpers/fuzz.js';

// ---- paths ----

/** Path pieces that exercise every branch: dots (plain and encoded), slashes, escapes, separators. */
const PATH_PIECES = [
  '/',
  '//',
  '///',
  '.',
  '..',
  '...',
  'a',
  'b',
  'repos',
  'user',
  '%2e',
  '%2E',
  '%2e%2e',
  '%2E.',
  '%41',
  '%7e',
  '%7E',
  '%20',
  '%25',
  '%2541',
  '%2f',
  '%2F',
  '%5c',
  '%3b',
  '%3F',
  '%23',
  '%',
  '%g0',
  '%4',
  ';',
  '\\',
  '?',
  '#',
  '?x=/../',
  '#/..',
  '~',
  '-',
  '_',
  '*',
  '+',
  'é',
  '\u0000',
  ' ',
];
const rawPath = fc.oneof(
  { weight: 4, arbitrary: fc.array(fc.constantFrom(...PATH_PIECES), { maxLength: 12 }).map((parts) => parts.join('')) },
  {
    weight: 2,
    arbitrary: fc.array(fc.constantFrom(...PATH_PIECES), { maxLength: 12 }).map((parts) => `/${parts.join('')}`),
  },
  { weight: 1, arbitrary: hostileString },
);

/** Pieces a WHATWG URL path keeps as they are (so only dot segments and slashes differ between readings). */
const SAFE_PIECES = [
  '/',
  '//',
  '.',
  '..',
  'a',
  'b',
  'repos',
  'user',
  '%2e',
  '%2E',
  '%2e%2e',
  '%41',
  '%7e',
  '~',
  '-',
  '_',
  '%20',
];
const safePath = fc.array(fc.constantFrom(...SAFE_PIECES), { maxLength: 14 }).map((parts) => `/${parts.join('')}`);

const UNRESERVED = /[A-Za-z0-9\-._~]/;
/** Decodes percent-encoded unreserved characters only (what every reading agrees on). */
const decodeUnreserved = (p: string) =>
  p.replace(/%([0-9A-Fa-f]{2})/g, (m, hex: string) =>
    UNRESERVED.test(String.fromCharCode(parseInt(hex, 16))) ? String.fromCharCode(parseInt(hex, 16)) : m,
  );
/** RFC 3986 dot-segment removal as the WHATWG URL parser does it (empty segments are segments). */
const whatwg = (p: string) => new URL(`http://h.example${p}`).pathname;
const merge = (p: string) => p.replace(/\/{2,}/g, '/');

function expectNormalShape(n: string): void {
  expect(n.startsWith('/')).toBe(true);
  expect(n).not.toMatch(/\/\//);
  expect(n.split('/').slice(1, -1)).not.toContain('.');
  expect(n.split('/').slice(1, -1)).not.toContain('..');
  expect(['.', '..']).not.toContain(n.split('/').at(-1));
  expect(n).not.toMatch(/[?#;\\]/);
  for (const m of n.matchAll(/%(.{0,2})/g)) {
    expect(m[1]).toMatch(/^[0-9A-F]{2}$/);
    const c = String.fromCharCode(parseInt(m[1]!, 16));
    expect(UNRESERVED.test(c) || c === '/' || c === '\\' || c === ';').toBe(false);
  }
}

/** A reference glob: `*` any run (including `/`), `?` exactly one character, everything else literal. */
function globMatch(pattern: string, path: string): boolean {
  const memo = new Map<string, boolean>();
  const go = (i: number, j: number): boolean => {
    const key = `${i},${j}`;
    const known = memo.get(key);
    if (known !== undefined) return known;
    let r: boolean;
    if (i === pattern.length) r = j === path.length;
    else if (pattern[i] === '*') r = go(i + 1, j) || (j < path.length && go(i, j + 1));
    else r = j < path.length && (pattern[i] === '?' || pattern[i] === path[j]) && go(i + 1, j + 1);
    memo.set(key, r);
    return r;
  };
  return go(0, 0);
}

/**
 * The reference for `match_paths`, written from LangSmith's doc comment with string operations only:
 * `*` alone matches everything; a pattern without wildcards is exact; `P/*` or `P/**` with P free of
 * wildcards is "starts with P"; `* /E` (no space) with E free of wildcards is "ends with E"; anything else
 * is the extension's glob.
 */
function referenceMatch(pattern: string, path: string): boolean {
  const wild = (s: string) => s.includes('*') || s.includes('?');
  if (pattern === '*') return true;
  if (!wild(pattern)) return pattern === path;
  for (const tail of ['/**', '/*']) {
    if (pattern.endsWith(tail) && !wild(pattern.slice(0, -tail.length)))
      return path.startsWith(pattern.slice(0, -tail.length));
  }
  if (pattern.startsWith('*/') && !wild(pattern.slice(2))) return path.endsWith(pattern.slice(2));
  return globMatch(pattern, path);
}

describe('path normaliser, fuzzed', () => {
  it(
    'a normalised path has no dot segment, no "//", no ambiguity left, and normalising it again changes nothing',
    async () => {
      await fuzz(
        'normalisePath: shape and idempotence',
        3000,
        fc.property(rawPath, (p) => {
          const n = normalisePath(p);
          if (n === undefined) return;
          expectNormalShape(n);
          expect(normalisePath(n)).toBe(n);
        }),
      );
    },
    fuzzTimeout(1500),
  );

  it(
    'agrees with both readings a server may take (WHATWG dot removal, with or without merged slashes), or refuses',
    async () => {
      await fuzz(
        'normalisePath: agrees with WHATWG readings',
        3000,
        fc.property(safePath, (p) => {
          const n = normalisePath(p);
          const decoded = decodeUnreserved(p);
          const keepEmpty = merge(whatwg(decoded));
          const mergedFirst = whatwg(merge(decoded));
          // Where the readings differ, authproxy must refuse; where they agree it normalises to that reading,
          // or refuses a path that mixes empty and dot segments (on which URL parsers themselves differ).
          if (keepEmpty !== mergedFirst) expect(n).toBeUndefined();
          else if (n !== undefined || !(decoded.includes('//') && /\/\.\.?(?:\/|$)/.test(decoded)))
            expect(n).toBe(keepEmpty);
        }),
      );
    },
    fuzzTimeout(1500),
  );

  it(
    'never escapes its prefix: a /repos/* match means the raw path, resolved by any reading, starts with /repos',
    async () => {
      const repos = compilePathPattern('/repos/*').test;
      const tail = fc
        .array(fc.constantFrom(...SAFE_PIECES, 'repos/', '../', '%2e%2e/', '/../'), { maxLength: 10 })
        .map((parts) => parts.join(''));
      await fuzz(
        'normalisePath: no escape from a prefix',
        3000,
        fc.property(fc.constantFrom('/repos/', '/user/', '/', '//', '/a/../'), tail, (prefix, t) => {
          const p = prefix + t;
          const n = normalisePath(p);
          if (n === undefined || !repos(n)) return;
          expect(n.startsWith('/repos')).toBe(true);
          const decoded = decodeUnreserved(p);
          expect(merge(whatwg(decoded)).startsWith('/repos')).toBe(true);
          expect(whatwg(merge(decoded)).startsWith('/repos')).toBe(true);
        }),
      );
    },
    fuzzTimeout(1500),
  );

  it(
    'path patterns match exactly what the reference (LangSmith forms, else a glob) matches',
    async () => {
      const alphabet = [
        'a',
        'b',
        '/',
        '.',
        '*',
        '?',
        '-',
        '+',
        '(',
        ')',
        '[',
        ']',
        '{',
        '}',
        '^',
        '$',
        '|',
        '\\',
        '\n',
        'é',
      ];
      const text = (max: number) => fc.array(fc.constantFrom(...alphabet), { maxLength: max }).map((c) => c.join(''));
      await fuzz(
        'compilePathPattern: equals the reference',
        3000,
        fc.property(text(8), text(10), (pattern, path) => {
          expect(compilePathPattern(pattern).test(path)).toBe(referenceMatch(pattern, path));
        }),
      );
    },
    fuzzTimeout(1500),
  );
});

// ---- authorities ----

const LABELS = [
  'a',
  'api',
  'example',
  'com',
  'github',
  'x-y',
  '-x',
  'x-',
  '0',
  '127',
  '1',
  'xn--p1ai',
  'A',
  'API',
  'a'.repeat(63),
  'a'.repeat(64),
  '',
  '*',
  '_',
  'é',
  '\u212aey',
];
const hostPart = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.array(fc.constantFrom(...LABELS), { minLength: 1, maxLength: 5 }).map((l) => l.join('.')),
  },
  {
    weight: 1,
    arbitrary: fc.array(fc.constantFrom(...LABELS), { minLength: 1, maxLength: 4 }).map((l) => `${l.join('.')}.`),
  },
  { weight: 1, arbitrary: fc.ipV4().map(String) },
  { weight: 1, arbitrary: fc.ipV6().map((a) => `[${a}]`) },
  { weight: 1, arbitrary: fc.ipV6() },
  {
    weight: 1,
    arbitrary: fc.constantFrom(
      '[::1',
      '[::1]x',
      '[1.2.3.4]',
      '[fe80::1%25eth0]',
      'user@api.example.com',
      'a@b@c',
      'a b.com',
      'a\tb',
      '0x7f.1',
      '2130706433',
    ),
  },
);
const portPart = fc.oneof(
  fc.constant(''),
  fc.constantFrom(
    ':',
    ':0',
    ':1',
    ':443',
    ':0443',
    ':65535',
    ':65536',
    ':99999',
    ':123456',
    ':-1',
    ':+1',
    ':1e3',
    ': 80',
    ':80:80',
  ),
  fc.integer({ min: 0, max: 70000 }).map((p) => `:${p}`),
);
const authority = fc.oneof(
  { weight: 5, arbitrary: fc.tuple(hostPart, portPart).map(([h, p]) => h + p) },
  { weight: 1, arbitrary: hostileString },
);
const scheme = fc.constantFrom('https', 'http', 'HTTPS', '', 'ftp');

/** The authority a target is written as. */
const formatTarget = (t: Target) => `${t.host.includes(':') ? `[${t.host}]` : t.host}:${t.port}`;

describe('host normaliser, fuzzed', () => {
  it(
    'a normalised target is a lower-case ASCII hostname or IP with a port in 1..65535, and normalising it again changes nothing',
    async () => {
      await fuzz(
        'normaliseAuthority: shape and idempotence',
        4000,
        fc.property(authority, scheme, (a, s) => {
          const t = normaliseAuthority(a, s);
          if (t === undefined) return;
          expect(t.host).toMatch(/^[\x21-\x7e]+$/);
          expect(t.host).toBe(t.host.toLowerCase());
          expect(t.host.endsWith('.')).toBe(false);
          expect(isHostname(t.host) || isIP(t.host) !== 0).toBe(true);
          expect(Number.isInteger(t.port) && t.port >= 1 && t.port <= 65535).toBe(true);
          expect(normaliseAuthority(formatTarget(t), s)).toEqual(t);
          expect(normaliseAuthority(formatTarget(t).toUpperCase(), s)).toEqual(t);
          // No userinfo, no white space, nothing outside printable ASCII ever names a host.
          expect(a).not.toMatch(/[@\s]|[^\x21-\x7e]/);
          // The port is the explicit one, else the scheme's default.
          const explicit = /:(\d{1,5})$/.exec(a);
          if (explicit && !(a.includes(':') && !a.startsWith('[') && a.indexOf(':') !== a.lastIndexOf(':')))
            expect(t.port).toBe(Number(explicit[1]));
          if (!explicit && !/\]:/.test(a)) expect(t.port).toBe(s === 'http' ? 80 : 443);
        }),
      );
    },
    fuzzTimeout(4000),
  );
});
