/** A `.` or `..` segment anywhere in a path. */
const DOT_SEGMENT = /\/\.\.?(?:\/|$)/;
/** A path without `%`, `//` or a dot segment is already normal: the common case skips all work. */
const SPECIAL = /%|\/\/|\/\.\.?(?:\/|$)/;

/**
 * Path normalisation for matching (contract, Matching step 3): query and fragment dropped, percent-encoded
 * unreserved characters decoded, repeated slashes merged, dot segments resolved. Returns undefined when
 * the path stays ambiguous (an encoded `/` or `\`, a literal `\`, a `;` parameter, invalid percent-encoding,
 * a dot segment in a path with an empty segment, or not origin-form), and such a request gets no credential.
 */
export function normalisePath(raw: string): string | undefined {
  let path = raw;
  const cut = path.search(/[?#]/);
  if (cut >= 0) path = path.slice(0, cut);
  if (path === '') path = '/';
  if (!path.startsWith('/')) return undefined;
  if (path.includes(';') || path.includes('\\')) return undefined;
  if (!SPECIAL.test(path)) return path;
  let decoded = '';
  for (let i = 0; i < path.length; i++) {
    const ch = path[i]!;
    if (ch !== '%') {
      decoded += ch;
      continue;
    }
    const hex = path.slice(i + 1, i + 3);
    if (!/^[0-9A-Fa-f]{2}$/.test(hex)) return undefined;
    const code = parseInt(hex, 16);
    const c = String.fromCharCode(code);
    if (c === '/' || c === '\\' || c === ';') return undefined;
    decoded += /[A-Za-z0-9\-._~]/.test(c) ? c : `%${hex.toUpperCase()}`;
    i += 2;
  }
  // Dot segments beside an empty segment mean different things to different readers: RFC 3986 (and
  // WHATWG, and Envoy's normalize_path) pops the empty segment (`/user//../repos/x` is `/user/repos/x`),
  // merging slashes first pops the real one (`/repos/x`), and URL parsers disagree on `//.x/.`. A server
  // reading it one way must never get a credential decided another way, so any such path is refused.
  if (decoded.includes('//') && DOT_SEGMENT.test(decoded)) return undefined;
  return removeDotSegments(decoded.replace(/\/{2,}/g, '/'));
}

/** RFC 3986 section 5.2.4 on an absolute path (empty segments count as segments). */
function removeDotSegments(path: string): string {
  const out: string[] = [];
  const segments = path.split('/').slice(1);
  segments.forEach((seg, i) => {
    const last = i === segments.length - 1;
    if (seg === '.') {
      if (last) out.push('');
    } else if (seg === '..') {
      out.pop();
      if (last) out.push('');
    } else out.push(seg);
  });
  return `/${out.join('/')}`;
}
