/**
 * No access token could be had. `configProblem` separates what an operator must fix (wrong
 * secret, unknown app or tenant: the authority refused) from what passes (authority unreachable).
 */
export class TokenUnavailableError extends Error {
  constructor(
    message: string,
    readonly configProblem: boolean,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'TokenUnavailableError';
  }

  static from(error: unknown): TokenUnavailableError {
    const fields = (typeof error === 'object' && error !== null ? error : {}) as { errorCode?: unknown; errorMessage?: unknown; message?: unknown };
    const code = typeof fields.errorCode === 'string' ? fields.errorCode : '';
    const text = typeof fields.errorMessage === 'string' && fields.errorMessage ? fields.errorMessage : String(fields.message ?? error);
    // Only the first line: AADSTS messages carry trace and correlation ids, never secrets.
    const firstLine = text.split(/\r?\n/)[0]?.slice(0, 300) ?? '';
    const refused = /^(invalid_client|unauthorized_client|invalid_request|invalid_scope|invalid_grant|invalid_resource)$/.test(code) || /AADSTS\d+/.test(text);
    return new TokenUnavailableError(`token request failed${code ? ` (${code})` : ''}: ${firstLine}`, refused, { cause: error });
  }
}

/**
 * The secret holds no valid `upstream` block: an operator must fix it. Here rather than beside
 * the secret's submitter, so the delivery core can recognise it without loading the AWS SDK.
 */
export class UpstreamSecretError extends Error {
  constructor(
    readonly secretArn: string,
    readonly problems: string[],
  ) {
    super(`the upstream secret ${secretArn} is not valid: ${problems.join('; ')}`);
    this.name = 'UpstreamSecretError';
  }
}
