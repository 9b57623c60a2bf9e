import { AuthProxyError } from '../../errors.js';

// Kept apart from setup.ts so the CLI can parse the flag without loading google-auth-library.

/**
 * Parses `--gcp-token-uri-allow` (comma-separated): token endpoints besides Google's that a service-account
 * key's `token_uri` may name, each an exact https URL or an `https://host[:port]` prefix (which allows
 * every path on that origin, and no other host). Exists for tests and private endpoints; the compile step
 * (compile-providers.ts) applies it. Throws a usage error naming the entry.
 */
export function parseGcpTokenUriAllow(list: string, flag = '--gcp-token-uri-allow'): string[] {
  const entries = list
    .split(',')
    .map((e) => e.trim())
    .filter((e) => e !== '');
  for (const entry of entries) {
    let url: URL | undefined;
    try {
      url = new URL(entry);
    } catch {
      url = undefined;
    }
    const shown = entry.slice(0, 80);
    if (url?.protocol !== 'https:' || !entry.toLowerCase().startsWith('https://'))
      throw new AuthProxyError(
        'usage',
        `${flag}: "${shown}" is not an https:// URL (token endpoints are only called over https)`,
      );
    if (url.username || url.password || url.search || url.hash || entry.includes('?') || entry.includes('#'))
      throw new AuthProxyError('usage', `${flag}: "${shown}" must not have credentials, a query or a fragment`);
  }
  return entries;
}
