import type { IdentifiableCall } from '../extproc/identity.js';
import * as grpc from '@grpc/grpc-js';
import { errorLine } from '../errors.js';
import type { Logger } from '../log.js';
import type { Clock } from './clock.js';
import type { Issued, SecretIssuer } from './issuer.js';
import { renewalTime } from './leaf-cache.js';
import { SECRET_TYPE_URL } from './secret-resource.js';

/** A renewal timer never fires sooner than this after it is planned, so a leaf that is due at once can't spin. */
export const MIN_RENEWAL_DELAY_MS = 1000;
/** When a renewal mint fails, the stream tries again after this (Envoy keeps serving the current leaf). */
export const RENEWAL_RETRY_MS = 60_000;

/** What every SDS stream handler needs from the service. */
export interface StreamContext {
  readonly issuer: SecretIssuer;
  readonly clock: Clock;
  readonly log: Logger;
  /** The sandbox named by a stream's metadata; undefined when it is ambiguous (every name is refused). */
  sandboxIdOf(call: IdentifiableCall): string | undefined;
  /** Registers a stream so that shutting the service down can end it. */
  track(state: StreamState): void;
  untrack(state: StreamState): void;
}

/** A bidi call as the handlers use it, whatever its message types. */
type AnyCall = grpc.ServerDuplexStream<unknown, unknown>;

/**
 * Per-stream bookkeeping shared by the delta and state-of-the-world handlers. Requests and renewals of
 * one stream run one at a time, in order, so an unsubscribe can never overtake the subscribe before it
 * and responses go out in the order they were decided. One renewal timer per subscribed name; all of
 * them are cancelled when the stream ends in any way (half-close, cancel, error, service shutdown).
 */
export class StreamState {
  private queue: Promise<void> = Promise.resolve();
  private readonly timers = new Map<string, () => void>();
  private closed = false;

  constructor(
    private readonly call: AnyCall,
    private readonly ctx: StreamContext,
    private readonly kind: 'delta' | 'sotw',
  ) {
    ctx.track(this);
    call.on('end', () => this.run(async () => this.end()));
    for (const event of ['cancelled', 'error', 'close']) call.on(event, () => this.close());
  }

  /** Queues `task` after everything already queued on this stream; a failure is logged, never thrown. */
  run(task: () => Promise<void>): void {
    this.queue = this.queue
      .then(() => (this.closed ? undefined : task()))
      .catch((err: unknown) =>
        this.ctx.log.error({ stream: this.kind, err: errorLine(err) }, 'sds: stream task failed'),
      );
  }

  /** Writes a response unless the stream is gone. */
  write(message: unknown): void {
    if (!this.closed && !this.call.writableEnded && !this.call.destroyed) this.call.write(message);
  }

  /** Plans `onDue` (queued on this stream) for `name` at clock time `at`, replacing any earlier plan. */
  schedule(name: string, at: number, onDue: () => Promise<void>): void {
    this.cancel(name);
    if (this.closed) return;
    const delay = Math.max(at - this.ctx.clock.now(), MIN_RENEWAL_DELAY_MS);
    const cancel = this.ctx.clock.setTimer(() => {
      this.timers.delete(name);
      this.run(onDue);
    }, delay);
    this.timers.set(name, cancel);
  }

  cancel(name: string): void {
    this.timers.get(name)?.();
    this.timers.delete(name);
  }

  /** Ends the stream with a gRPC error status (a request we can't serve, such as a wrong type_url). */
  /**
   * The checks every request of both flavours starts with: a foreign type_url ends the stream (returns
   * false), a NACK is logged once and not answered by a resend (returns 'nack').
   */
  screen(
    req: { typeUrl: string; responseNonce: string; errorDetail?: { code: number; message: string } | undefined },
    sandboxId: string | undefined,
  ): 'ok' | 'nack' | false {
    if (req.typeUrl !== '' && req.typeUrl !== SECRET_TYPE_URL) {
      this.fail(grpc.status.INVALID_ARGUMENT, `type_url: this server only serves ${SECRET_TYPE_URL}`);
      return false;
    }
    if (!req.errorDetail) return 'ok';
    this.ctx.log.warn(
      {
        sandbox: sandboxId ?? '(ambiguous)',
        nonce: req.responseNonce,
        code: req.errorDetail.code,
        detail: scrubDetail(req.errorDetail.message),
      },
      'sds: Envoy rejected a secret (NACK); not resending',
    );
    return 'nack';
  }

  /**
   * A due renewal of `name`, the same for both flavours: re-issue it; when minting failed, try again later
   * (Envoy still holds a valid leaf, so nothing is removed); when the leaf did not change, plan the next
   * renewal; otherwise hand the new result to `push`.
   */
  async renew(
    name: string,
    sandboxId: string | undefined,
    sentVersion: string | undefined,
    push: (result: Issued) => void | Promise<void>,
    again: () => Promise<void>,
  ): Promise<void> {
    const result = await this.ctx.issuer.issue(name, sandboxId, true);
    if (result.kind === 'refused' && result.reason === 'mint_failed') {
      this.schedule(name, this.ctx.clock.now() + RENEWAL_RETRY_MS, again);
      return;
    }
    if (result.kind === 'secret' && result.version === sentVersion) {
      this.schedule(name, renewalTime(result.leaf), again);
      return;
    }
    await push(result);
  }

  fail(code: grpc.status, details: string): void {
    if (!this.closed) this.call.emit('error', { code, details });
    this.close();
  }

  /** Ends the stream with OK (the client half-closed, or the service is shutting down). */
  end(): void {
    if (!this.closed && !this.call.writableEnded && !this.call.destroyed) this.call.end();
    this.close();
  }

  /** Stops all timers and forgets the stream; safe to call more than once. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const cancel of this.timers.values()) cancel();
    this.timers.clear();
    this.ctx.untrack(this);
  }

  /** Number of planned renewals (for tests and metrics). */
  get plannedRenewals(): number {
    return this.timers.size;
  }
}

/** A NACK's message, safe to log: PEM blocks cut out (Envoy may quote what it rejected), bounded length. */
export function scrubDetail(message: string): string {
  return message.replace(/-----BEGIN[\s\S]*?(?:-----END[^-]*-----|$)/g, '[pem]').slice(0, 300);
}
