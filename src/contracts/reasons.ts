/**
 * The one table of decision reasons: every value of the `reason` label of `authproxy_decisions_total`, the
 * outcome it is counted under, and, for the refusals whose answer does not depend on the request, the status
 * and the text body Envoy sends back. The engine, the ext_proc adapter, the cloud handlers and the metrics
 * take their reasons from here; docs/operations.md lists the same set. A leaf: imports nothing.
 */

/** What the engine did with one request (the `outcome` label of `authproxy_decisions_total`). */
export type DecisionOutcome = 'pass' | 'refuse' | 'inject' | 'callback_failed';

/** One row: the outcomes a reason is counted under, and its fixed status and body when it has them. */
export interface ReasonRow {
  readonly outcomes: readonly DecisionOutcome[];
  /** The status of the refusal, when the reason fixes it (some, e.g. `aws_unsignable`, vary by case). */
  readonly status?: number;
  /** The refusal's text body, when the reason fixes it; otherwise the handler writes one (or the default). */
  readonly body?: string;
}

/** The body of a refusal whose reason has no text of its own. */
export const DEFAULT_REFUSAL_BODY = 'egress to this host is not allowed';
/** Body of the 502 the contract prescribes when a callback fails. */
export const CALLBACK_FAILED_BODY = 'callback resolution failed';

/** Why a callback failed; a closed set, used in logs, metrics and the shared cache's failure notices. */
export const CALLBACK_FAILURE_REASONS = [
  'status',
  'redirect',
  'transport',
  'timeout',
  'too_large',
  'malformed',
  'invalid_header',
  'private_destination',
] as const;
export type CallbackFailureReason = (typeof CALLBACK_FAILURE_REASONS)[number];

const callbackFailed: ReasonRow = { outcomes: ['callback_failed'], status: 502, body: CALLBACK_FAILED_BODY };

export const DECISION_REASONS = {
  // The policy (the forward proxy, its CONNECT phase and transparent mode)
  unknown_sandbox: { outcomes: ['pass'] },
  no_proxy: { outcomes: ['pass'] },
  ambiguous_path: { outcomes: ['pass'] },
  no_match: { outcomes: ['pass'] },
  invalid_authority: { outcomes: ['pass', 'refuse'], status: 403, body: 'invalid target' },
  access_denied: { outcomes: ['refuse'], status: 403 },
  cleartext: { outcomes: ['refuse'], status: 403, body: 'credentials are only sent over https' },
  misdirected: { outcomes: ['refuse'], status: 421, body: 'host, TLS server name and CONNECT target disagree' },
  no_sni: { outcomes: ['refuse'], status: 403 },
  ip_literal: { outcomes: ['refuse'], status: 403 },
  protocol_mismatch: { outcomes: ['refuse'], status: 403 },
  raw_tcp_denied: { outcomes: ['refuse'], status: 403 },
  // The ext_proc adapter itself: a request whose pseudo-headers can't be read as one target (421 inside an
  // intercepted tunnel, else passed with nothing injected), and a capture-phase message without its
  // original destination (403)
  ambiguous_request: {
    outcomes: ['pass', 'refuse'],
    status: 421,
    body: 'host, TLS server name and CONNECT target disagree',
  },
  bad_capture: { outcomes: ['refuse'], status: 403 },
  // The egress guard and sandbox links
  private_destination: {
    outcomes: ['refuse', 'callback_failed'],
    status: 403,
    body: 'destination resolves to a private address',
  },
  unresolvable: { outcomes: ['refuse'], status: 502, body: 'destination could not be resolved' },
  no_sandbox_link: { outcomes: ['refuse'], status: 403, body: 'no sandbox link allows this destination' },
  internal: { outcomes: ['refuse', 'callback_failed'], status: 502 },
  // Injections
  rule: { outcomes: ['inject'] },
  rewrite: { outcomes: ['inject'] },
  callback: { outcomes: ['inject'] },
  // Callback failures (all a 502 with the same body)
  status: callbackFailed,
  redirect: callbackFailed,
  transport: callbackFailed,
  timeout: callbackFailed,
  too_large: callbackFailed,
  malformed: callbackFailed,
  invalid_header: callbackFailed,
  // Cloud providers (bodies written by the handlers)
  aws: { outcomes: ['inject'] },
  aws_presigned: { outcomes: ['inject'] },
  aws_unsigned: { outcomes: ['refuse'], status: 403 },
  aws_scope: { outcomes: ['refuse'], status: 403 },
  aws_chunk_signed: { outcomes: ['refuse'], status: 400 },
  aws_unsignable: { outcomes: ['refuse'] },
  aws_too_large: { outcomes: ['refuse'], status: 413 },
  aws_role_failed: { outcomes: ['refuse'], status: 502 },
  gcp: { outcomes: ['inject'] },
  gcp_token_failed: { outcomes: ['refuse'], status: 502 },
  azure: { outcomes: ['inject'] },
  azure_sas: { outcomes: ['inject'] },
  azure_unsigned: { outcomes: ['refuse'], status: 403 },
  azure_account: { outcomes: ['refuse'], status: 403 },
  azure_unsignable: { outcomes: ['refuse'], status: 502 },
} as const satisfies Record<string, ReasonRow> & Record<CallbackFailureReason, ReasonRow>;

/** Why (the `reason` label of `authproxy_decisions_total`). */
export type DecisionReason = keyof typeof DECISION_REASONS;

const BODIES: ReadonlyMap<string, string> = new Map(
  Object.entries(DECISION_REASONS as Record<string, ReasonRow>).flatMap(([reason, row]) =>
    row.body !== undefined && row.outcomes.includes('refuse') ? [[reason, row.body] as const] : [],
  ),
);

/** The short text body of a refusal, by reason (the engine's and the ext_proc adapter's own refusals). */
export function refusalBody(reason: string): string {
  return BODIES.get(reason) ?? DEFAULT_REFUSAL_BODY;
}
