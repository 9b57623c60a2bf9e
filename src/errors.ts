/**
 * The one error type of authproxy. Its `code` is a closed set so that callers can branch on it and
 * metrics can use it as a label; its message is always one line and never contains a secret value.
 */
export type ErrorCode =
  | 'config_invalid'
  | 'config_io'
  | 'secret_missing'
  | 'seal_invalid'
  | 'key_invalid'
  | 'callback_failed'
  | 'usage';

/** Why exists: every failure that reaches a user is one line with a code, never a stack trace. */
export class AuthProxyError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    /** One line per problem, for errors that gather several (config validation). */
    readonly problems: readonly string[] = [message],
  ) {
    super(message);
    this.name = 'AuthProxyError';
  }
}

/** Turns anything thrown into one printable line, without a stack trace. */
export function errorLine(err: unknown): string {
  if (err instanceof AuthProxyError) return err.message;
  if (err instanceof Error) return err.message.split('\n')[0] ?? 'error';
  return String(err);
}
