import { z } from 'zod';

/**
 * The fields every kind of rule shares (header rules and the aws / gcp provider rules), defined once so
 * that a name, an `enabled` flag or an `env_vars` map means the same thing on each.
 */
const envName = /^[A-Za-z_][A-Za-z0-9_]*$/;

export const ruleFields = {
  // Names are echoed in problems, logs and audit lines: a control character or line break would split them.
  name: z
    .string({ error: 'must be a string' })
    .min(1, { error: 'must not be empty' })
    .max(128)
    .regex(/^[^\u0000-\u001f\u007f-\u009f\u2028\u2029]*$/, {
      error: 'must not contain control characters or line breaks',
    }),
  enabled: z.boolean({ error: 'must be true or false' }).default(true),
  env_vars: z
    .record(
      z.string().regex(envName, { error: 'must be an environment variable name' }),
      z.string({ error: 'must be a string' }),
    )
    .default({}),
  description: z
    .string({ error: 'must be a string' })
    .max(1024, { error: 'must be at most 1024 characters' })
    .optional(),
  /** LangSmith Cloud relays have no counterpart here: refused with the reason (see RELAY_REFUSAL in schema.ts). */
  relay_id: z
    .undefined({
      error:
        'names a LangSmith Cloud relay, which authproxy does not have: use `authproxy serve --upstream-proxy URL` (docs/deployment.md) to leave through your own proxy',
    })
    .optional(),
};
