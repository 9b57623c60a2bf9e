import { describe, expect, it } from 'vitest';
import { normalisePath } from '../../src/policy/path.js';
import { compilePathPattern } from '../../src/policy/path-pattern.js';

describe('normalisePath', () => {
  it.each([
    ['', '/'],
    ['/', '/'],
    ['?q=1', '/'],
    ['#frag', '/'],
    ['/a?b=/c#d', '/a'],
    ['/a#b?c', '/a'],
    // repeated slashes merged
    ['//', '/'],
    ['///a//b///', '/a/b/'],
    // dot segments (RFC 3986 5.2.4)
    ['/.', '/'],
    ['/..', '/'],
    ['/../../a', '/a'],
    ['/a/.', '/a/'],
    ['/a/..', '/'],
    ['/a/b/..', '/a/'],
    ['/a/./b/../c', '/a/c'],
    ['/a/b/../../../c', '/c'],
    ['/a/.b/..c/...', '/a/.b/..c/...'],
    ['/a/..//b', undefined],
    // percent-encoded unreserved characters decoded, before dot segments are resolved
    ['/%2e%2e/a', '/a'],
    ['/x/%2E%2E', '/'],
    ['/x/%2e/y', '/x/y'],
    ['/%41%5a%61%7A%30%39', '/AZaz09'],
    ['/%2D%5F%7E%2E', '/-_~.'],
    // other encodings kept, hex upper-cased
    ['/a%20b', '/a%20b'],
    ['/a%3fb', '/a%3Fb'],
    ['/%c3%a9', '/%C3%A9'],
    ['/%00', '/%00'],
    ['/%25', '/%25'],
    ['/%2541', '/%2541'],
    // literal characters survive
    ['/a+b/[x]/{y}/*', '/a+b/[x]/{y}/*'],
    ['/caf\u00e9', '/caf\u00e9'],
  ])('%j -> %j', (raw, expected) => {
    expect(normalisePath(raw)).toBe(expected);
  });

  it('decodes only once (no double decoding)', () => {
    expect(normalisePath('/%252e%252e/admin')).toBe('/%252e%252e/admin');
  });

  it.each([
    ['encoded slash', '/a%2Fb'],
    ['encoded slash, lower-case hex', '/a%2fb'],
    ['encoded backslash', '/a%5Cb'],
    ['literal backslash', '/a\\b'],
    ['literal backslash used as traversal', '/a\\..\\b'],
    ['matrix parameter', '/a;b=1'],
    ['semicolon at the end', '/a;'],
    ['encoded semicolon', '/a%3Bb'],
    ['non-hex escape', '/a%zz'],
    ['half-hex escape', '/a%4g'],
    ['truncated escape', '/a%4'],
    ['trailing percent', '/a%'],
    ['percent before query', '/a%?x'],
    ['not origin-form (relative)', 'a/b'],
    ['not origin-form (asterisk)', '*'],
    ['not origin-form (absolute URL)', 'https://api.github.com/user'],
  ])('%s (%j) is ambiguous', (_why, raw) => {
    expect(normalisePath(raw)).toBeUndefined();
  });

  it('ignores ambiguous characters in the query or fragment', () => {
    expect(normalisePath('/a?x=%2F;\\')).toBe('/a');
    expect(normalisePath('/a#%zz')).toBe('/a');
  });
});

describe('compilePathPattern: LangSmith forms (langsmith 0.12.0, ProxyConfig.Rule.match_paths)', () => {
  const matches = (pattern: string, path: string) => compilePathPattern(pattern).test(path);
  const form = (pattern: string) => compilePathPattern(pattern).form;

  it.each([
    // [pattern, form]
    ['*', 'any'],
    ['/v1/runs', 'exact'],
    ['/v1/*', 'prefix'],
    ['/v1/**', 'prefix'],
    ['/*', 'prefix'],
    ['*/runs', 'suffix'],
    ['*/', 'suffix'],
    ['/repos/*/info/refs', 'glob'],
    ['/*/info/refs', 'glob'],
    ['/*.git/*', 'glob'],
    ['*/x/*', 'glob'],
    ['/v?/x', 'glob'],
    ['/a*', 'glob'],
  ])('%j is the %s form', (pattern, expected) => {
    expect(form(pattern)).toBe(expected);
  });

  it.each([
    // [pattern, path, matches] — the examples of LangSmith's doc comment first
    ['/v1/*', '/v1', true],
    ['/v1/*', '/v1/x', true],
    ['/v1/*', '/v10', true],
    ['/v1/*', '/v1/a/b/c', true],
    ['/v1/*', '/v', false],
    ['/v1/*', '/x/v1/a', false],
    ['/v1/**', '/v1', true],
    ['/v1/**', '/v10/x', true],
    ['/v1/**', '/v2', false],
    ['*/runs', '/v1/xruns', true],
    ['*/runs', '/v1/runs', true],
    ['*/runs', '/runs', true],
    ['*/runs', '/v1/runs/1', false],
    ['*/runs', '/v1/run', false],
    ['/v1/runs', '/v1/runs', true],
    ['/v1/runs', '/v1/runs/', false],
    ['/v1/runs', '/v1/Runs', false],
    ['*', '/anything/at/all', true],
    ['*', '', true],
    ['/*', '/', true],
    ['/*', '/x', true],
    ['/repos/*', '/repos', true],
    ['/repos/*', '/reposx', true],
    ['/repos/*', '/repo', false],
    ['/v1.0/*', '/v1.0/m', true],
    ['/v1.0/*', '/v1x0/m', false],
    ['/a+/*', '/a+/x', true],
    ['/a+/*', '/aa/x', false],
    ['*/graphql', '/api/graphql', true],
    ['*/graphql', '/api/xgraphql', true],
    ['*/graphql', '/api/graphql/x', false],
  ])('%j vs %j -> %s', (pattern, path, expected) => {
    expect(matches(pattern, path)).toBe(expected);
  });
});

describe('compilePathPattern: the glob extension (wildcards beyond LangSmith grammar)', () => {
  const matches = (pattern: string, path: string) => compilePathPattern(pattern).test(path);

  it.each([
    // [pattern, path, matches]
    ['/*/info/refs', '/org/repo.git/info/refs', true],
    ['/*/info/refs', '/info/refs', false],
    ['/repos/*/info/refs', '/repos/a/b/info/refs', true],
    ['/repos/*/info/refs', '/repos/info/refs', false],
    ['/*.git/*', '/org/repo.git/info/refs', true],
    ['/*.git/*', '/org/repo/info/refs', false],
    ['/a*b*c', '/a/x/b/y/c', true],
    ['/a*b*c', '/a/x/c/y/b', false],
    ['/v?/x', '/v1/x', true],
    ['/v?/x', '/v/x', false],
    ['/v?/x', '/v12/x', false],
    ['/a?c', '/a/c', true],
    ['/x[12]*', '/x[12]', true],
    ['/x[12]*', '/x1', false],
    ['/i{2}*', '/i{2}', true],
    ['/i{2}*', '/ii', false],
    ['/(a|b)*', '/(a|b)', true],
    ['/(a|b)*', '/a', false],
    ['/^a$*', '/^a$', true],
    ['/a\\d*', '/a\\d', true],
    ['/a\\d*', '/a1', false],
    ['/!(x)*', '/!(x)', true],
    ['/!(x)*', '/y', false],
    ['/a-z*', '/a-z', true],
    ['/a.*', '/a.json', true],
    ['/a.*', '/ab', false],
  ])('%j vs %j -> %s', (pattern, path, expected) => {
    expect(matches(pattern, path)).toBe(expected);
  });

  it('matches across newlines like any other character', () => {
    expect(matches('/a*b', '/a\nb')).toBe(true);
    expect(matches('/a?b', '/a\nb')).toBe(true);
  });
});

describe('compilePathPattern: hostile paths', () => {
  it('a glob with several "*" answers a 200 KB path without backtracking (a regex would take minutes)', () => {
    const long = `/${'a/'.repeat(100_000)}`;
    expect(compilePathPattern('/*/*/*/x').test(long)).toBe(false);
    expect(compilePathPattern('/*/*/*/x').test(`${long}x`)).toBe(true);
    expect(compilePathPattern('/repos/*/*/contents/*').test(`/repos/${'o/'.repeat(50_000)}`)).toBe(false);
  });
});
