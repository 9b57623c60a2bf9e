import type { ProxyConfig } from '../config/schema.js';
import { ApiError } from './api-error.js';

/** The AWS role of a config, as the comparison sees it: rule name, ARN, tags, subject scope and whether it is enabled. */
function roleOf(config: ProxyConfig | undefined): { name: string; key: string } | undefined {
  const rule = config?.rules.find((r) => r.type === 'aws');
  if (rule?.type !== 'aws' || !('role_arn' in rule.aws)) return undefined;
  const tags = Object.entries(rule.aws.session_tags ?? {}).sort(([a], [b]) => (a < b ? -1 : 1));
  return {
    name: rule.name,
    key: JSON.stringify([rule.name, rule.aws.role_arn, tags, rule.aws.subject_scope ?? 'workspace', rule.enabled]),
  };
}

/**
 * A sandbox's AWS role is set when its config is created: a later write (PATCH, or a PUT that replaces a
 * stored config) may keep it as it is but may not add, change, remove or disable it, because the role is
 * what the sandbox's tenant was granted (delete the sandbox's config and create it again to change it).
 * Throws a 409 naming the rule.
 */
export function checkRoleUnchanged(before: ProxyConfig | undefined, next: ProxyConfig): void {
  if (!before) return;
  const was = roleOf(before);
  const now = roleOf(next);
  if (was?.key === now?.key) return;
  const name = now?.name ?? was?.name ?? 'aws';
  throw new ApiError(409, 'the AWS role of a sandbox is set when its config is created', [
    `rules "${name}": an AWS role can't be added, changed, removed or disabled by a later write; delete the sandbox's config and create it again`,
  ]);
}
