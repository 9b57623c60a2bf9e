/**
 * `match_headers` entries (langsmith 0.12.0, `ProxyConfig.Rule.match_headers`): each is written
 * `"name: value"` with a lowercase header name and an exact, case-sensitive value; a rule with entries
 * matches only requests that carry every listed header with exactly that value. Parsed once here, for the
 * schema (which reports a bad entry by its index) and for compilation.
 */

const LOWER_TOKEN = /^[!#$%&'*+\-.^_`|~0-9a-z]+$/;
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/** One parsed entry: the header name (lowercase) and the exact value it must have. */
export interface MatchHeader {
  readonly name: string;
  readonly value: string;
}

/**
 * Parses `name: value`. The name is what comes before the first `:`; optional white space after the colon
 * is not part of the value (HTTP strips it from field values too). Returns why the entry is invalid, never
 * echoing the value (it may be a placeholder the sandbox holds).
 */
export function parseMatchHeader(entry: string): { ok: true; header: MatchHeader } | { ok: false; problem: string } {
  const colon = entry.indexOf(':');
  if (colon < 0) return { ok: false, problem: 'must be written "name: value"' };
  const name = entry.slice(0, colon);
  const value = entry.slice(colon + 1).replace(/^[ \t]+/, '');
  if (name === '')
    return {
      ok: false,
      problem: 'must be written "name: value" (the name is empty; pseudo-headers cannot be matched)',
    };
  if (!TOKEN.test(name))
    return { ok: false, problem: 'must start with an HTTP header name (token characters only) before ":"' };
  if (!LOWER_TOKEN.test(name)) return { ok: false, problem: `header name "${name}" must be lowercase` };
  if (name === 'host' || name === 'proxy-authorization')
    return {
      ok: false,
      problem: `"${name}" cannot be matched (${name === 'host' ? 'use match_hosts' : 'it is removed before any rule is applied'})`,
    };
  if (value === '') return { ok: false, problem: 'needs a value after ":"' };
  if (/[ \t]$/.test(value))
    return { ok: false, problem: 'value must not end with white space (HTTP strips it, so it could never match)' };
  if (/[\u0000-\u0008\u000a-\u001f\u007f]/.test(value))
    return { ok: false, problem: 'value must not contain control characters' };
  if (value.length > 8192) return { ok: false, problem: 'value is longer than 8192 characters' };
  return { ok: true, header: { name, value } };
}
