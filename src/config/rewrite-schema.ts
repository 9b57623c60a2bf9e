import { z } from 'zod';
import { isIP } from 'node:net';
import { hostPatternProblem, q } from './host-pattern.js';

/**
 * The `type: rewrite` rule of LangChain's proxy_config: matched requests go to another https destination
 * (`rewrite.host`) or to another sandbox (`rewrite.sandbox`, shared-service mode only), with the credential
 * headers the sandbox sent stripped, redacted or kept, and the rule's own `headers` set after that.
 */

/** What happens to the credential headers the sandbox sent: removed, value replaced by `redacted`, or forwarded. */
export const CREDENTIAL_POLICIES = ['strip', 'redact', 'keep'] as const;
export type CredentialPolicy = (typeof CREDENTIAL_POLICIES)[number];

/** Why `host` can't be a rewrite destination, or undefined when it can: a bare DNS hostname, never a pattern or an IP. */
export function rewriteHostProblem(host: string): string | undefined {
  if (isIP(host.replace(/^\[|\]$/g, '')) !== 0)
    return `${q(host)} is an IP address: a rewrite needs a hostname (its TLS certificate is verified against it)`;
  if (host.includes('*')) return `${q(host)} must be one hostname, not a pattern`;
  return hostPatternProblem(host, false);
}

const port = z
  .number({
    error: (issue) => (issue.input === undefined ? 'is required: a port number 1..65535' : 'must be a number 1..65535'),
  })
  .int({ error: 'must be a whole number' })
  .min(1, { error: 'must be between 1 and 65535' })
  .max(65535, { error: 'must be between 1 and 65535' });

/** Names a sandbox: the id as the admin API stores it (`/v1/sandboxes/{id}`). */
const sandboxName = z.string({ error: 'must be a string' }).regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/, {
  error: 'must be a sandbox name or id (letters, digits, ".", "_", "-"; at most 128)',
});

/** The `rewrite` object: exactly one of `host` and `sandbox`, a required `port`, and the credentials policy. */
export const rewriteTargetSchema = z
  .strictObject(
    {
      host: z
        .string({ error: 'must be a string' })
        .superRefine((host, ctx) => {
          const problem = rewriteHostProblem(host);
          if (problem) ctx.addIssue({ code: 'custom', message: problem });
        })
        .transform((h) => h.toLowerCase())
        .optional(),
      sandbox: sandboxName.optional(),
      port,
      credentials: z.enum(CREDENTIAL_POLICIES, { error: 'must be strip, redact or keep' }).default('strip'),
    },
    { error: 'must be an object {host | sandbox, port, credentials?}' },
  )
  .superRefine((r, ctx) => {
    if ((r.host === undefined) === (r.sandbox === undefined))
      ctx.addIssue({ code: 'custom', message: 'set exactly one of host or sandbox' });
  });

/** Why a rewrite to another sandbox may carry only plaintext headers. */
export const SANDBOX_SECRET_HEADER =
  'a sandbox destination is plain http, and credentials are never sent in cleartext: only plaintext headers may go there';

export type RewriteTarget = z.output<typeof rewriteTargetSchema>;
