/**
 * Header value helpers for building proxy_configs in code: spread one into a header with its name, e.g.
 * `{ name: 'Authorization', ...workspaceSecret('Bearer {OPENAI_API_KEY}') }`. They exist so the three
 * header types read at a glance and a key name can't silently become a literal value.
 */

const KEY = /^[A-Za-z_][A-Za-z0-9_]*$/;
const PLACEHOLDER = /\{[A-Za-z_][A-Za-z0-9_]*\}/;

/** A non-secret header value, stored and returned as is (e.g. `anthropic-version`). */
export function plaintext(value: string): { type: 'plaintext'; value: string } {
  return { type: 'plaintext', value };
}

/**
 * A value resolved from the server's workspace secrets when the config is applied. A bare key becomes a
 * placeholder — `workspaceSecret('GITHUB_TOKEN')` is `{GITHUB_TOKEN}` — and a template that already
 * holds `{KEY}` placeholders passes through: `workspaceSecret('Bearer {GITHUB_TOKEN}')`. Anything else
 * throws, since a workspace_secret without a placeholder is a config error.
 */
export function workspaceSecret(templateOrKey: string): { type: 'workspace_secret'; value: string } {
  if (PLACEHOLDER.test(templateOrKey)) return { type: 'workspace_secret', value: templateOrKey };
  if (KEY.test(templateOrKey)) return { type: 'workspace_secret', value: `{${templateOrKey}}` };
  throw new TypeError('workspaceSecret: expected a secret key (A-Z, a-z, 0-9, _) or a template containing {KEY}');
}

/**
 * A write-only secret: sent in plaintext over the authenticated admin API, sealed by the server before it
 * is stored, never returned. A value already sealed (`sealed:...`) is stored as is.
 */
export function opaqueSecret(value: string): { type: 'opaque'; value: string } {
  return { type: 'opaque', value };
}
