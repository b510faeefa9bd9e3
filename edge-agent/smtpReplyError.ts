/**
 * An error that says how the device is answered. smtp-server sends `responseCode` and `message`
 * as the reply; the message starts with the RFC 3463 enhanced code because the agent writes
 * every enhanced code itself (smtp-server's own mapping would give 5.1.1 to every 550).
 */
export class SmtpReplyError extends Error {
  readonly responseCode: number;

  constructor(responseCode: number, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'SmtpReplyError';
    this.responseCode = responseCode;
  }

  /** The full reply line as a device sees it. */
  get reply(): string {
    return `${this.responseCode} ${this.message}`;
  }
}
