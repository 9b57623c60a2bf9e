import type { Logger } from '../../log.js';
import type { Metrics } from '../../metrics/metrics.js';
import type { Decision, PolicyRequest } from '../../policy/decide.js';
import type { CloudHandler, Outcome, RequestExtras } from '../../contracts/engine.js';
import { BODY_LIMIT } from '../../contracts/envoy.js';
import { resign, UnsignableRequest, type AwsCredentials } from './resign.js';
import { AwsRoleFailure, type AwsRoleCredentials } from './role-credentials.js';
import { isPresigned, parseAuthorization, payloadChoice, scopeProblem, type SigV4Authorization } from './sigv4.js';

/** The engine's decision for a request to an AWS endpoint while a `type: aws` rule is enabled. */
export type AwsDecision = Extract<Decision, { outcome: 'aws' }>;

/** Why an AWS request was refused or failed; the `reason` label of `authproxy_decisions_total`. */
export type AwsDecisionReason =
  | 'aws'
  | 'aws_presigned'
  | 'aws_unsigned'
  | 'aws_scope'
  | 'aws_chunk_signed'
  | 'aws_unsignable'
  | 'aws_too_large'
  | 'aws_role_failed';

/** The most of a body authproxy hashes (the intercepting listener's buffer limit is set to match). */
export const AWS_BODY_LIMIT = BODY_LIMIT;

/** Bodies of the refusals, each saying what to change. Exported for tests. */
export const AWS_REFUSALS = {
  unsigned:
    'request is not SigV4-signed: authproxy re-signs AWS requests that the SDK signed with the placeholder credentials (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY from the sandbox environment)',
  chunkSigned:
    'chunk-signed uploads (x-amz-content-sha256: STREAMING-AWS4-HMAC-SHA256-PAYLOAD...) cannot be re-signed: every chunk carries a signature made with the placeholder key. ' +
    'Turn chunk signing off: AWS SDK for Java 2.x S3Configuration.builder().chunkedEncodingEnabled(false) (S3AsyncClient: requestChecksumCalculation(RequestChecksumCalculation.WHEN_REQUIRED)); ' +
    'Java 1.x AmazonS3ClientBuilder.standard().disableChunkedEncoding(); .NET PutObjectRequest/UploadPartRequest UseChunkEncoding = false. ' +
    'boto3, the AWS CLI, the JavaScript SDK v3 and the Go SDK v2 send UNSIGNED-PAYLOAD or a payload hash over https and need no change',
  invalidPayload:
    'x-amz-content-sha256 must be a SHA-256 hex digest, UNSIGNED-PAYLOAD or STREAMING-UNSIGNED-PAYLOAD-TRAILER',
  tooLarge: `request body over ${AWS_BODY_LIMIT / 1024 / 1024} MiB: authproxy hashes AWS request bodies to re-sign them. Send x-amz-content-sha256 (S3 SDKs do), or split the upload (S3 multipart upload)`,
  noHeaders: 'AWS re-signing needs the request headers, which this adapter does not provide',
  roleFailed: 'AWS role auth failed',
  signingFailed: 'AWS re-signing failed',
} as const;

/** What the AWS handler needs besides the decision. */
export interface AwsHandlerOptions {
  readonly log: Logger;
  readonly metrics?: Metrics;
  /** Role sessions (`aws: {role_arn}` rules); without it such rules fail closed with 502. */
  readonly roles?: AwsRoleCredentials;
  /** The signing time; injectable for tests. */
  readonly clock?: () => Date;
}

const PASS: Outcome = { kind: 'continue', set: [], remove: ['proxy-authorization'] };

/**
 * The `type: aws` provider: takes the request the sandbox's SDK signed with placeholder keys and signs it
 * again with the real credentials (static keys, or a role session assumed with ExternalId = the tenant).
 * Presigned URLs pass untouched; unsigned or mis-scoped requests are 403, chunk-signed uploads 400,
 * bodies over 16 MiB (when authproxy must hash them) 413, role failures 502. Never logs a credential.
 */
export class AwsSigner implements CloudHandler<AwsDecision, PolicyRequest> {
  private readonly clock: () => Date;

  constructor(private readonly options: AwsHandlerOptions) {
    this.clock = options.clock ?? (() => new Date());
  }

  handle(
    decision: AwsDecision,
    req: PolicyRequest,
    extras: RequestExtras | undefined,
    sandboxId: string,
  ): Outcome | Promise<Outcome> {
    if (isPresigned(req.path)) return this.counted('inject', 'aws_presigned', PASS);
    if (!extras) return this.refuse(decision, sandboxId, 'aws_unsignable', 502, AWS_REFUSALS.noHeaders);
    const headers = extras.headers();
    const authorization = headers.authorization;
    const auth = authorization?.length === 1 ? parseAuthorization(authorization[0]) : undefined;
    if (!auth) return this.refuse(decision, sandboxId, 'aws_unsigned', 403, AWS_REFUSALS.unsigned);
    const scope = scopeProblem(auth, decision.endpoint, decision.target.host);
    if (scope) return this.refuse(decision, sandboxId, 'aws_scope', 403, `AWS request refused: ${scope}`);
    const payload = payloadChoice(headers['x-amz-content-sha256']);
    if (payload.kind === 'chunk_signed')
      return this.refuse(decision, sandboxId, 'aws_chunk_signed', 400, AWS_REFUSALS.chunkSigned);
    if (payload.kind === 'invalid')
      return this.refuse(decision, sandboxId, 'aws_unsignable', 400, AWS_REFUSALS.invalidPayload);
    const sign = (p: { given: string } | { body: Uint8Array }) => this.sign(decision, req, headers, auth, p, sandboxId);
    if (payload.kind === 'given') return sign({ given: payload.value });
    if (extras.endOfStream) return sign({ body: new Uint8Array(0) });
    return {
      kind: 'awaitBody',
      // Envoy stops buffering at the listener's limit over HTTP/1.1; over HTTP/2 it may hand on more: cut here too.
      resume: (body, complete) =>
        complete && body.byteLength <= AWS_BODY_LIMIT
          ? sign({ body })
          : this.refuse(decision, sandboxId, 'aws_too_large', 413, AWS_REFUSALS.tooLarge),
    };
  }

  private async sign(
    decision: AwsDecision,
    req: PolicyRequest,
    headers: Record<string, string[]>,
    auth: SigV4Authorization,
    payload: { given: string } | { body: Uint8Array },
    sandboxId: string,
  ): Promise<Outcome> {
    let credentials: AwsCredentials;
    try {
      credentials = await this.credentials(decision, sandboxId);
    } catch (err) {
      this.options.log.warn(
        {
          sandbox: sandboxId,
          rule: decision.rule.name,
          host: decision.target.host,
          err: err instanceof Error ? err.message : String(err),
        },
        'AWS role auth failed',
      );
      return this.counted('refuse', 'aws_role_failed', { kind: 'immediate', status: 502, body: roleFailureBody(err) });
    }
    try {
      const out = await resign({
        method: req.method,
        authority: req.authority,
        path: req.path,
        headers,
        auth,
        payload,
        credentials,
        now: this.clock(),
      });
      return this.counted('inject', 'aws', { kind: 'continue', set: out.set, remove: out.remove });
    } catch (err) {
      if (err instanceof UnsignableRequest)
        return this.refuse(
          decision,
          sandboxId,
          'aws_unsignable',
          400,
          `AWS request can't be re-signed: ${err.message}`,
        );
      // Never a rejection into the ext_proc stream: fail closed. Only the error's class is logged.
      this.options.log.error(
        {
          sandbox: sandboxId,
          rule: decision.rule.name,
          host: decision.target.host,
          err: err instanceof Error ? err.name : 'error',
        },
        'AWS re-signing failed',
      );
      return this.counted('refuse', 'aws_unsignable', {
        kind: 'immediate',
        status: 502,
        body: AWS_REFUSALS.signingFailed,
      });
    }
  }

  private credentials(decision: AwsDecision, sandboxId: string): AwsCredentials | Promise<AwsCredentials> {
    const { auth } = decision.rule;
    if (auth.kind === 'static') return auth;
    if (!this.options.roles) throw new Error('role sessions are not configured');
    return this.options.roles.get(auth.roleArn, auth.sessionTags, sandboxId);
  }

  private refuse(
    decision: AwsDecision,
    sandboxId: string,
    reason: AwsDecisionReason,
    status: number,
    body: string,
  ): Outcome {
    this.options.log.info(
      { sandbox: sandboxId, rule: decision.rule.name, host: decision.target.host, reason, status },
      'AWS request refused',
    );
    return this.counted('refuse', reason, { kind: 'immediate', status, body });
  }

  private counted(outcome: 'inject' | 'refuse', reason: AwsDecisionReason, result: Outcome): Outcome {
    this.options.metrics?.decision(outcome, reason);
    return result;
  }
}

/** The 502 body of a role failure: "AWS role auth failed" and the STS error, never a value. */
function roleFailureBody(err: unknown): string {
  return err instanceof AwsRoleFailure ? err.message : `${AWS_REFUSALS.roleFailed}: no role session could be obtained`;
}
