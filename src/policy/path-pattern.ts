/**
 * `match_paths` patterns, as LangSmith's proxy_config defines them (langsmith 0.12.0, `ProxyConfig.Rule.match_paths`):
 * an exact path; a prefix written `PREFIX/*` or `PREFIX/**`, which matches every path that starts with the
 * string PREFIX (`/v1/*` matches `/v1`, `/v1/x` and `/v10`); a suffix written as `*`, a slash and END, which matches
 * every path that ends with the string END (END `runs` matches `/v1/xruns`); `*` alone for every path.
 * Anything else with a wildcard is authproxy's extension beyond that grammar (a `glob`): `*` matches any run of
 * characters including `/`, `?` exactly one character, everything else literally, over the whole path.
 * Patterns are matched against the normalised path (src/policy/path.ts), never the query.
 */

/** Which form of the grammar a pattern is; `authproxy explain` shows it. */
export type PathPatternForm = 'exact' | 'prefix' | 'suffix' | 'any' | 'glob';

/** One compiled `match_paths` entry. */
export interface PathPattern {
  /** The pattern as written in the config. */
  readonly pattern: string;
  readonly form: PathPatternForm;
  /** Whether a normalised path matches. */
  readonly test: (path: string) => boolean;
}

const WILDCARD = /[*?]/;
const PREFIX_FORM = /^(.*)\/\*\*?$/s;
const SUFFIX_FORM = /^\*\/(.*)$/s;

/** Classifies and compiles one pattern; every string compiles (the schema checks the leading `/` or `*`). */
export function compilePathPattern(pattern: string): PathPattern {
  if (pattern === '*') return { pattern, form: 'any', test: () => true };
  if (!WILDCARD.test(pattern)) return { pattern, form: 'exact', test: (path) => path === pattern };
  const prefix = PREFIX_FORM.exec(pattern)?.[1];
  if (prefix !== undefined && !WILDCARD.test(prefix))
    return { pattern, form: 'prefix', test: (path) => path.startsWith(prefix) };
  const suffix = SUFFIX_FORM.exec(pattern)?.[1];
  if (suffix !== undefined && !WILDCARD.test(suffix))
    return { pattern, form: 'suffix', test: (path) => path.endsWith(suffix) };
  return { pattern, form: 'glob', test: globMatcher(pattern) };
}

/**
 * The extension's glob over the whole path: `*` any run of characters including `/`, `?` one character.
 * Matched in linear-ish time (one backtrack point, the last `*`: at most path × pattern steps), never with a
 * backtracking regex, whose time grows with the power of the number of `*` on a long hostile path.
 * (micromatch is not used: its `*` stops at `/` and it gives `{}`, `[]`, `!` and `+()` meanings of its own.)
 */
function globMatcher(pattern: string): (path: string) => boolean {
  return (path) => {
    let p = 0;
    let s = 0;
    let star = -1;
    let mark = 0;
    while (s < path.length) {
      const c = pattern[p];
      if (c === '*') {
        star = p++;
        mark = s;
      } else if (p < pattern.length && (c === '?' || c === path[s])) {
        p++;
        s++;
      } else if (star >= 0) {
        p = star + 1;
        s = ++mark;
      } else return false;
    }
    while (pattern[p] === '*') p++;
    return p === pattern.length;
  };
}

/** The first of `patterns` that matches `path`, for explain; undefined when none does. */
export function matchingPattern(patterns: readonly PathPattern[], path: string): PathPattern | undefined {
  for (const p of patterns) if (p.test(path)) return p;
  return undefined;
}
