import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { AuthProxyError } from '../errors.js';
import type { Logger } from '../log.js';
import { TENANT_ID } from '../contracts/identity.js';

/** Who made an admin request: a token id (never the token) and the sandboxes it may touch. */
export interface AdminPrincipal {
  /** First 8 hex characters of SHA-256(token): names the caller in audit lines without revealing it. */
  readonly id: string;
  /** Exact ids and `prefix*` entries; undefined = every sandbox. */
  readonly scope: readonly string[] | undefined;
  /**
   * A `tenant=T` scope entry: the token creates sandboxes in tenant T only, touches only sandboxes whose
   * tenant is T, and never changes a sandbox's tenant. Undefined = any tenant.
   */
  readonly tenant?: string;
  /**
   * `keys=PREFIX*` / `keys=NAME` scope entries: the only workspace secrets (`{KEY}` placeholders) the
   * configs this token stores may name. Undefined = any key.
   */
  readonly keys?: readonly string[];
}

interface TokenEntry extends AdminPrincipal {
  readonly digest: Buffer;
}

const MIN_TOKEN_LENGTH = 16;
const TOKEN_CHARS = /^[\x21-\x7e]+$/;
const SCOPE_ENTRY = /^(\*|[A-Za-z0-9][A-Za-z0-9._:-]{0,127}\*?)$/;
const TENANT_ENTRY = 'tenant=';
const KEYS_ENTRY = 'keys=';
const KEY_PATTERN = /^(\*|[A-Za-z_][A-Za-z0-9_]*\*?)$/;

function sha256(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}

/**
 * Parses a tokens file: one token per line, optionally followed by whitespace and a scope
 * (`TOKEN sb-a,sb-team-*`, `TOKEN tenant=acme`, `TOKEN keys=TEAM_A_*` or several: `TOKEN tenant=acme,sb-acme-*,keys=ACME_*`;
 * a token is then limited by every kind of entry); blank lines and `#` comments (whole lines, or after whitespace) are ignored.
 * Returns the entries and one problem per bad line, naming the line but never the token.
 */
export function parseTokens(text: string, source: string): { entries: TokenEntry[]; problems: string[] } {
  const entries: TokenEntry[] = [];
  const problems: string[] = [];
  const seen = new Map<string, number>();
  text.split('\n').forEach((raw, i) => {
    const where = `${source}:${i + 1}`;
    const fields = raw.trim().split(/\s+/).filter(Boolean);
    const comment = fields.findIndex((f) => f.startsWith('#'));
    if (comment >= 0) fields.length = comment;
    if (fields.length === 0) return;
    const [token, scopeText, ...rest] = fields as [string, string | undefined, ...string[]];
    if (rest.length > 0)
      return void problems.push(
        `${where}: expected "TOKEN [SCOPE]" (scope entries are comma-separated, without spaces)`,
      );
    if (token.length < MIN_TOKEN_LENGTH || !TOKEN_CHARS.test(token)) {
      return void problems.push(`${where}: a token must be at least ${MIN_TOKEN_LENGTH} visible ASCII characters`);
    }
    const digest = sha256(token);
    const key = digest.toString('hex');
    const first = seen.get(key);
    if (first !== undefined) return void problems.push(`${where}: duplicate token (also line ${first})`);
    seen.set(key, i + 1);
    let scope: string[] | undefined;
    let tenant: string | undefined;
    let keys: string[] | undefined;
    if (scopeText !== undefined) {
      const all = scopeText.split(',');
      const keyEntries = all.filter((s) => s.startsWith(KEYS_ENTRY));
      const badKey = keyEntries.findIndex((s) => !KEY_PATTERN.test(s.slice(KEYS_ENTRY.length)));
      if (badKey >= 0)
        return void problems.push(
          `${where}: "keys=" needs a workspace secret name or "PREFIX*" (entry ${all.indexOf(keyEntries[badKey]!) + 1} is not)`,
        );
      keys = keyEntries.length === 0 ? undefined : keyEntries.map((s) => s.slice(KEYS_ENTRY.length));
      if (keys?.includes('*')) keys = undefined;
      const tenants = all.filter((s) => s.startsWith(TENANT_ENTRY));
      // Never echo an entry: a line with two tokens would otherwise print the second one.
      const badTenant = tenants.findIndex((s) => !TENANT_ID.test(s.slice(TENANT_ENTRY.length)));
      if (badTenant >= 0)
        return void problems.push(
          `${where}: "tenant=" needs a tenant id of 1-128 characters of A-Z a-z 0-9 . _ : - (entry ${all.indexOf(tenants[badTenant]!) + 1} is not)`,
        );
      if (tenants.length > 1) return void problems.push(`${where}: at most one "tenant=" scope entry per token`);
      tenant = tenants[0]?.slice(TENANT_ENTRY.length);
      scope = all.filter((s) => !s.startsWith(TENANT_ENTRY) && !s.startsWith(KEYS_ENTRY));
      const bad = scope.filter((s) => !SCOPE_ENTRY.test(s));
      if (bad.length > 0)
        return void problems.push(
          `${where}: scope entries must be sandbox ids, "prefix*", "*", "tenant=ID" or "keys=PREFIX*" (entry ${all.indexOf(bad[0]!) + 1} is not)`,
        );
      if (scope.includes('*') || scope.length === 0) scope = undefined;
    }
    entries.push({
      id: key.slice(0, 8),
      scope,
      ...(tenant === undefined ? {} : { tenant }),
      ...(keys === undefined ? {} : { keys }),
      digest,
    });
  });
  return { entries, problems };
}

/** Whether `principal` may read or change sandbox `id`. */
export function mayAccess(principal: AdminPrincipal, id: string): boolean {
  if (!principal.scope) return true;
  return principal.scope.some((s) => (s.endsWith('*') ? id.startsWith(s.slice(0, -1)) : id === s));
}

/**
 * The admin API's bearer tokens. Exists to keep every token comparison constant-time (both sides are
 * hashed with SHA-256, then compared with `timingSafeEqual`, and every entry is compared) and to follow
 * the tokens file without a restart: each request stats the file (one cheap syscall) and re-reads it
 * when its inode, size, or nanosecond mtime/ctime changed, which also catches Kubernetes' `..data`
 * symlink swap. On a reload, bad lines are dropped (logged by line number) and the rest apply; an
 * unreadable file means no valid token (fail closed) until it is readable again. Only digests are kept.
 */
export class AdminTokens {
  private entries: readonly TokenEntry[];
  private stamp: string | undefined;
  private reloading: Promise<void> | undefined;

  private constructor(
    entries: TokenEntry[],
    private readonly path: string | undefined,
    private readonly log: Logger | undefined,
  ) {
    this.entries = entries;
  }

  /** Reads the tokens file once at start; any bad line, or no token at all, is a one-line error naming the file. */
  static async fromFile(path: string, log: Logger): Promise<AdminTokens> {
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (err) {
      throw new AuthProxyError(
        'config_io',
        `${path}: cannot read admin tokens (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
      );
    }
    const { entries, problems } = parseTokens(text, path);
    if (problems.length > 0) throw new AuthProxyError('usage', problems.join('; '), problems);
    if (entries.length === 0) throw new AuthProxyError('usage', `${path}: no admin token (one per line)`);
    const tokens = new AdminTokens(entries, path, log);
    tokens.stamp = await fileStamp(path);
    return tokens;
  }

  /** Fixed tokens (no file), for embedding and tests: each line as in a tokens file. */
  static fromText(text: string, source = 'tokens'): AdminTokens {
    const { entries, problems } = parseTokens(text, source);
    if (problems.length > 0) throw new AuthProxyError('usage', problems.join('; '), problems);
    return new AdminTokens(entries, undefined, undefined);
  }

  /** Number of usable tokens (after the latest reload). */
  get size(): number {
    return this.entries.length;
  }

  /** The caller behind an `Authorization: Bearer ...` header, or undefined when it names no valid token. */
  async authenticate(authorization: string | undefined): Promise<AdminPrincipal | undefined> {
    await this.maybeReload();
    const m = /^Bearer +([\x21-\x7e]+) *$/i.exec(authorization ?? '');
    if (!m) return undefined;
    const presented = sha256(m[1]!);
    let found: TokenEntry | undefined;
    for (const entry of this.entries) if (timingSafeEqual(entry.digest, presented)) found = entry;
    if (!found) return undefined;
    const { digest: _digest, ...principal } = found;
    return principal;
  }

  private async maybeReload(): Promise<void> {
    if (!this.path) return;
    this.reloading ??= this.reload(this.path).finally(() => (this.reloading = undefined));
    await this.reloading;
  }

  private async reload(path: string): Promise<void> {
    const stamp = await fileStamp(path);
    if (stamp === this.stamp) return;
    this.stamp = stamp;
    if (stamp === undefined) {
      this.entries = [];
      this.log?.error({ file: path }, 'admin tokens file unreadable: refusing every admin request until it is back');
      return;
    }
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch {
      this.entries = [];
      this.stamp = undefined;
      this.log?.error({ file: path }, 'admin tokens file unreadable: refusing every admin request until it is back');
      return;
    }
    const { entries, problems } = parseTokens(text, path);
    for (const problem of problems) this.log?.warn(`admin tokens reload: line skipped: ${problem}`);
    this.entries = entries;
    this.log?.info({ file: path, tokens: entries.length }, 'admin tokens reloaded');
  }
}

/** Identifies one version of the file: inode, size and nanosecond times (undefined when unreadable). */
async function fileStamp(path: string): Promise<string | undefined> {
  try {
    const s = await stat(path, { bigint: true });
    return `${s.ino}:${s.size}:${s.mtimeNs}:${s.ctimeNs}`;
  } catch {
    return undefined;
  }
}
