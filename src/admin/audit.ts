import type { ProxyConfig } from '../config/schema.js';
import type { Logger } from '../log.js';

/** What a write changed, by name only: rule names, whether callbacks changed, which other fields changed. */
export interface ConfigChange {
  readonly added: string[];
  readonly removed: string[];
  /** Rules present before and after whose content differs (a re-sent opaque value counts: it was rewritten). */
  readonly changed: string[];
  readonly callbacks_changed: boolean;
  /** Top-level fields other than rules and callbacks that differ (`access_control`, `no_proxy`, `description`). */
  readonly fields_changed: string[];
}

const OTHER_FIELDS = ['access_control', 'no_proxy', 'description'] as const;

/** Compares two stored configs (sealed values compare as stored, so a kept opaque value is unchanged). */
export function diffConfigs(before: ProxyConfig | undefined, after: ProxyConfig | undefined): ConfigChange {
  const old = new Map((before?.rules ?? []).map((r) => [r.name, JSON.stringify(r)]));
  const now = new Map((after?.rules ?? []).map((r) => [r.name, JSON.stringify(r)]));
  return {
    added: [...now.keys()].filter((n) => !old.has(n)),
    removed: [...old.keys()].filter((n) => !now.has(n)),
    changed: [...now].filter(([n, json]) => old.has(n) && old.get(n) !== json).map(([n]) => n),
    callbacks_changed: JSON.stringify(before?.callbacks ?? []) !== JSON.stringify(after?.callbacks ?? []),
    fields_changed: OTHER_FIELDS.filter((f) => JSON.stringify(before?.[f]) !== JSON.stringify(after?.[f])),
  };
}

/** One audited admin action. */
export interface AuditEntry {
  /** Token id of the caller (first 8 hex characters of SHA-256 of the token). */
  readonly actor: string;
  readonly action: 'create' | 'replace' | 'patch' | 'delete';
  readonly sandbox: string;
  /** The sandbox's tenant after the write (before it, for a delete). */
  readonly tenant?: string;
  readonly change: ConfigChange;
  /** Version after the write; absent for a delete. */
  readonly version?: number;
}

/**
 * Writes the audit line of one change: `msg: "audit"` at info level, with who, what, which sandbox, which
 * rules (by name) and the resulting version. Exists so every change to a credential policy can be traced
 * to a token without ever logging a value, a URL's query or the token itself.
 */
export function audit(log: Logger, entry: AuditEntry): void {
  log.info(
    {
      actor: entry.actor,
      action: entry.action,
      sandbox: entry.sandbox,
      tenant: entry.tenant,
      version: entry.version,
      rules_added: entry.change.added,
      rules_removed: entry.change.removed,
      rules_changed: entry.change.changed,
      callbacks_changed: entry.change.callbacks_changed,
      fields_changed: entry.change.fields_changed,
    },
    'audit',
  );
}
