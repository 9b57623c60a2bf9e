/**
 * The admin API's one error shape. Exists so every refusal — auth, size, content type, validation — is
 * answered as JSON `{error, problems?}` with a fitting status, and never as a stack trace or an echo of
 * the request (which may hold a plaintext opaque value or a token).
 */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    /** One short line for humans and the SDK; never contains a value from the request. */
    readonly error: string,
    /** Field-named problems, one line each (`rules[0].match_hosts[0]: ...`). */
    readonly problems?: readonly string[],
    /** Extra response headers (e.g. `WWW-Authenticate`). */
    readonly headers: Readonly<Record<string, string>> = {},
  ) {
    super(error);
    this.name = 'ApiError';
  }

  /** The JSON body of the response. */
  body(): { error: string; problems?: readonly string[] } {
    return this.problems ? { error: this.error, problems: this.problems } : { error: this.error };
  }
}

/** A 422 for a proxy_config that cannot be stored; every problem names its field. */
export function invalidConfig(problems: readonly string[]): ApiError {
  return new ApiError(422, 'invalid proxy_config', problems);
}
