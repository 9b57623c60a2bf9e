import { z } from 'zod';
import { canonicalPattern, hostPatternProblem, q } from './host-pattern.js';
import { awsRuleSchema, gcpRuleSchema, isProviderRule, MANAGED_ENV } from './provider-schema.js';
import type { ProviderRule } from './provider-rule.js';
import { ruleFields } from './rule-fields.js';
import { rewriteTargetSchema, SANDBOX_SECRET_HEADER } from './rewrite-schema.js';
import { azureRuleSchema } from './azure-schema.js';
import { canonicalAccessEntry, parseAccessEntry } from './access-pattern.js';
import { parseMatchHeader } from './match-header.js';

/**
 * The proxy_config schema: the single source of the config's types, of validation and of the JSON
 * Schema for editors. Objects are strict, so a misspelled key is an error rather than silently ignored.
 */

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** Headers that a rule or a callback may never set: Envoy owns them, or they change message framing. */
const RESERVED_HEADERS = new Set([
  'host',
  'content-length',
  'transfer-encoding',
  'connection',
  'keep-alive',
  'te',
  'trailer',
  'upgrade',
  'proxy-connection',
  'proxy-authorization',
  'expect',
]);

/** Returns why `name` can't be set as an injected header, or undefined when it can. */
export function headerNameProblem(name: string): string | undefined {
  if (name.length > 256) return 'is longer than 256 characters';
  if (!TOKEN.test(name)) return 'must be an HTTP header name (token characters only)';
  const lower = name.toLowerCase();
  if (RESERVED_HEADERS.has(lower) || lower.startsWith('x-envoy-'))
    return `"${name}" is reserved and cannot be injected`;
  return undefined;
}

/** Returns why `value` can't be a header value, or undefined when it can. Never echoes the value. */
export function headerValueProblem(value: string): string | undefined {
  if (/[\r\n\0]/.test(value)) return 'must not contain CR, LF or NUL';
  if (value.length > 8192) return 'is longer than 8192 characters';
  return undefined;
}

const headerName = z.string().superRefine((name, ctx) => {
  const problem = headerNameProblem(name);
  if (problem) ctx.addIssue({ code: 'custom', message: problem });
});

/**
 * A sealed value is longer than what it opens to (its binding and the sealed box); what it opens to is
 * checked as a header value when the config is applied. Fits a 6000-byte value with a 1 KiB binding.
 */
const MAX_SEALED_LENGTH = 12_288;
const SEALED_FORM = /^sealed:[A-Za-z0-9_-]+$/;

const headerValue = z.string({ error: 'must be a string' }).superRefine((value, ctx) => {
  const problem = SEALED_FORM.test(value)
    ? value.length > MAX_SEALED_LENGTH
      ? `is longer than ${MAX_SEALED_LENGTH} characters`
      : undefined
    : headerValueProblem(value);
  if (problem) ctx.addIssue({ code: 'custom', message: problem });
});

function hostList(allowIp: boolean, min: number) {
  return z
    .array(
      z
        .string({ error: 'must be a string' })
        .superRefine((pattern, ctx) => {
          const problem = hostPatternProblem(pattern, allowIp);
          if (problem) ctx.addIssue({ code: 'custom', message: problem });
        })
        .transform(canonicalPattern),
    )
    .min(min, { error: `needs at least ${min} host pattern` });
}

const pathPattern = z
  .string({ error: 'must be a string' })
  .refine((p) => p.startsWith('/') || p.startsWith('*'), { error: 'must start with "/" or "*"' })
  .refine((p) => !/[#\s]/.test(p), { error: 'must not contain "#" or spaces' });

/**
 * Only an opaque value is opened before it is sent: a plaintext (or workspace_secret) value in the sealed form
 * is sent as written, so it is held to a header value's limits (it could be 12,288 characters long).
 */
const sealedFormOnlyIfOpaque = (
  h: { type: string; value: string },
  ctx: { addIssue(issue: { code: 'custom'; path: string[]; message: string }): void },
) => {
  const problem = h.type !== 'opaque' && SEALED_FORM.test(h.value) ? headerValueProblem(h.value) : undefined;
  if (problem) ctx.addIssue({ code: 'custom', path: ['value'], message: problem });
};

/** One header of a rule. */
export const headerSchema = z
  .strictObject({
    name: headerName,
    type: z.enum(['plaintext', 'workspace_secret', 'opaque'], {
      error: 'must be plaintext, workspace_secret or opaque',
    }),
    value: headerValue,
  })
  .superRefine(sealedFormOnlyIfOpaque);

/** One header that authproxy sends to a callback endpoint: plaintext or opaque only. */
export const callbackHeaderSchema = z
  .strictObject({
    name: headerName,
    type: z.enum(['plaintext', 'opaque'], {
      error: 'must be plaintext or opaque (workspace_secret is not allowed here)',
    }),
    value: headerValue,
  })
  .superRefine(sealedFormOnlyIfOpaque);

/** `match_headers` entries (`"name: value"`, src/config/match-header.ts), each checked where it stands. */
export const matchHeaders = z
  .array(
    z.string({ error: 'must be a string' }).superRefine((entry, ctx) => {
      const parsed = parseMatchHeader(entry);
      if (!parsed.ok) ctx.addIssue({ code: 'custom', message: parsed.problem });
    }),
  )
  .max(32, { error: 'at most 32 entries' })
  .default([]);

/**
 * One header-injection rule: `type` left out (or `""`, as LangSmith's API writes it back); the other
 * rule types are told apart by their `type`.
 */
export const ruleSchema = z.strictObject({
  ...ruleFields,
  type: z.literal('').optional(),
  match_hosts: hostList(false, 1),
  match_paths: z.array(pathPattern).default([]),
  match_headers: matchHeaders,
  headers: z.array(headerSchema).min(1, { error: 'needs at least one header' }).max(32),
});

/** A `type: rewrite` rule: the header rule's matching fields, plus where matched requests go (rewrite-schema.ts). */
/**
 * Builds the rewrite rule from the header rule's schema, so that the matching fields (`match_hosts`,
 * `match_paths`, and whatever else a header rule matches on) mean exactly the same on both. `headers`
 * becomes optional: a rewrite may inject nothing.
 */
function rewriteRuleSchema(headerRule: typeof ruleSchema) {
  return headerRule
    .omit({ type: true, headers: true })
    .extend({
      type: z.literal('rewrite'),
      headers: z.array(headerRule.shape.headers.element).max(32).default([]),
      rewrite: rewriteTargetSchema,
    })
    .superRefine((rule, ctx) => {
      // Another sandbox is reached over plain http: a credential must never travel in cleartext (contract, Matching step 10).
      if (rule.rewrite.sandbox === undefined) return;
      rule.headers.forEach((h, i) => {
        if (h.type !== 'plaintext')
          ctx.addIssue({ code: 'custom', path: ['headers', i, 'type'], message: SANDBOX_SECRET_HEADER });
      });
    });
}

export const rewriteRule = rewriteRuleSchema(ruleSchema);

/** Why `type: relay` (and `relay_id`) is refused: it names LangSmith Cloud objects authproxy has no counterpart for. */
export const RELAY_REFUSAL =
  'relay rules send traffic through a LangSmith Cloud relay, which authproxy does not have: to leave through your own network use `authproxy serve --upstream-proxy URL` (docs/deployment.md), or a rewrite rule to send matched requests elsewhere';

/** Any rule: a header rule, or another rule type told apart by its `type` (`relay` is refused with the reason). */
export const anyRuleSchema = z.discriminatedUnion(
  'type',
  [ruleSchema, rewriteRule, awsRuleSchema, gcpRuleSchema, azureRuleSchema],
  {
    error: (issue) => {
      const input = issue.input as { type?: unknown } | undefined;
      if (typeof input === 'object' && input !== null && input.type === 'relay') return RELAY_REFUSAL;
      return 'must be aws, gcp, azure or rewrite (header rules leave type out)';
    },
  },
);

/** Headers authproxy sets on every callback request itself (the body's type and the signature JWT). */
const PROXY_SET_CALLBACK_HEADERS = new Set(['content-type', 'x-langsmith-signature-jwt']);

/** One callback: the user's own credential endpoint. */
export const callbackSchema = z.strictObject({
  match_hosts: hostList(false, 1),
  url: z.string({ error: 'must be a string' }).superRefine((raw, ctx) => {
    let url: URL;
    try {
      url = new URL(raw);
    } catch {
      ctx.addIssue({ code: 'custom', message: 'must be an absolute http:// or https:// URL' });
      return;
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:')
      ctx.addIssue({ code: 'custom', message: 'must use http:// or https://' });
    if (url.username || url.password)
      ctx.addIssue({ code: 'custom', message: 'must not contain credentials; use request_headers' });
  }),
  ttl_seconds: z
    .number({ error: 'must be a number' })
    .int({ error: 'must be a whole number' })
    .min(60, { error: 'must be between 60 and 3600' })
    .max(3600, { error: 'must be between 60 and 3600' }),
  request_headers: z
    .array(callbackHeaderSchema)
    .max(32)
    .superRefine((headers, ctx) => {
      headers.forEach((h, i) => {
        if (PROXY_SET_CALLBACK_HEADERS.has(h.name.toLowerCase())) {
          ctx.addIssue({
            code: 'custom',
            path: [i, 'name'],
            message: `"${h.name}" is set by authproxy on every callback request`,
          });
        }
      });
    })
    .default([]),
  /** Called on every request to a matched host with a snapshot of it (method, URL, headers, first 1 MiB of body); never cached. */
  full_request: z.boolean({ error: 'must be true or false' }).default(false),
});

/** An access_control list: entries of the contract's Matching step 6, each checked by `parseAccessEntry`. */
const accessList = z.array(
  z
    .string({ error: 'must be a string' })
    .superRefine((entry, ctx) => {
      const parsed = parseAccessEntry(entry);
      if (!parsed.ok) ctx.addIssue({ code: 'custom', message: parsed.problem });
    })
    .transform(canonicalAccessEntry),
);

/**
 * Egress policy. As in LangChain's API, only one of allow_list and deny_list may be *populated*: an empty
 * list counts as not set, so `{allow_list: [], deny_list: [...]}` is a deny list. An object with neither
 * key is still an error.
 */
export const accessControlSchema = z
  .strictObject({ allow_list: accessList.optional(), deny_list: accessList.optional() })
  .refine((ac) => ac.allow_list !== undefined || ac.deny_list !== undefined, {
    error: 'set exactly one of allow_list or deny_list',
  })
  .refine((ac) => !(ac.allow_list?.length && ac.deny_list?.length), {
    error: 'only one of allow_list or deny_list may be populated (both have entries)',
  });

/** A whole proxy_config, as in a file, the admin API or the SDK. */
export const proxyConfigSchema = z
  .strictObject({
    rules: z.array(anyRuleSchema).default([]),
    callbacks: z.array(callbackSchema).default([]),
    access_control: accessControlSchema.optional(),
    no_proxy: hostList(true, 0).default([]),
    description: z
      .string({ error: 'must be a string' })
      .max(1024, { error: 'must be at most 1024 characters' })
      .optional(),
  })
  .superRefine((config, ctx) => {
    const seen = new Map<string, number>();
    const providers = new Map<string, number>();
    config.rules.forEach((rule, i) => {
      const first = seen.get(rule.name);
      if (first !== undefined) {
        ctx.addIssue({
          code: 'custom',
          path: ['rules', i, 'name'],
          message: `duplicate rule name ${q(rule.name)} (also rules[${first}])`,
        });
      } else seen.set(rule.name, i);
      if (!isProviderRule(rule)) return;
      const other = providers.get(rule.type);
      // Disabled ones count: enabling one must never make a config ambiguous.
      if (other !== undefined)
        ctx.addIssue({
          code: 'custom',
          path: ['rules', i, 'type'],
          message: `at most one ${rule.type} rule per config (also rules[${other}])`,
        });
      else providers.set(rule.type, i);
    });
    const managed = config.rules.flatMap((r) =>
      isProviderRule(r) && r.enabled ? MANAGED_ENV[r.type].map((name) => [name, r.name] as const) : [],
    );
    config.rules.forEach((rule, i) => {
      for (const [name, owner] of managed) {
        if (name in rule.env_vars)
          ctx.addIssue({
            code: 'custom',
            path: ['rules', i, 'env_vars', name],
            message: `is managed by authproxy while rule "${owner}" is enabled`,
          });
      }
    });
  });

/** A validated proxy_config (defaults applied). */
export type AnyRule = ProxyConfig['rules'][number];
export type ProxyConfig = z.output<typeof proxyConfigSchema>;
/** A proxy_config as a user writes it (defaults optional). */
export type ProxyConfigInput = z.input<typeof proxyConfigSchema>;
/** A header or rewrite rule (what `match_hosts` / `headers` belong to). */
export type Rule = Exclude<AnyRule, ProviderRule>;
/** A `type: rewrite` rule. */
export type RewriteRule = Extract<AnyRule, { type: 'rewrite' }>;
export type RuleHeader = z.output<typeof headerSchema>;
export type Callback = ProxyConfig['callbacks'][number];

/**
 * Formats one zod issue path as `rules[0].headers[1].name`. A key from the document (an env_vars name, a
 * sandbox id) is shown only when it is printable and short: one with a line break or control character,
 * or a huge one, would break the one-line problem or carry a value, so it becomes `<key not shown>`.
 */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    else {
      const key = /^[\x20-\x7e]{1,64}$/.test(String(part)) ? String(part) : '<key not shown>';
      out += out ? `.${key}` : key;
    }
  }
  return out || '(root)';
}
