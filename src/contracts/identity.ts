/**
 * Who a sandbox acts for: the tenant (LangSmith workspace) it belongs to and, optionally, the organization.
 * Sent to callback endpoints in `identity`, so one endpoint can serve many tenants.
 */
export interface SandboxIdentity {
  readonly tenantId: string;
  readonly organizationId?: string;
}

/** A tenant or organization id that a sandbox record or file entry may carry (both optional there). */
export interface IdentityFields {
  readonly tenantId?: string;
  readonly organizationId?: string;
}

/** Tenant and organization ids: 1-128 characters of A-Z a-z 0-9 . _ : - */
export const TENANT_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** The tenant of sandboxes (and sidecars) that name none: `--tenant-id`'s default. */
export const DEFAULT_TENANT_ID = 'default';

export const DEFAULT_IDENTITY: SandboxIdentity = { tenantId: DEFAULT_TENANT_ID };

/** Why `value` can't be a tenant or organization id (never echoes it), or undefined when it can. */
export function identityFieldProblem(value: unknown): string | undefined {
  if (typeof value !== 'string') return 'must be a string';
  return TENANT_ID.test(value) ? undefined : 'must be 1-128 characters of A-Z a-z 0-9 . _ : -';
}

/** Each field from `own` when set, else from `fallback`. */
export function effectiveIdentity(own: IdentityFields | undefined, fallback: SandboxIdentity): SandboxIdentity {
  const tenantId = own?.tenantId ?? fallback.tenantId;
  const organizationId = own?.organizationId ?? fallback.organizationId;
  return organizationId === undefined ? { tenantId } : { tenantId, organizationId };
}

/** Where the resolver finds the identity of a sandbox at the moment it calls a callback. */
export interface IdentitySource {
  identityFor(sandboxId: string): SandboxIdentity;
}
