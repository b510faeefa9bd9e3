import type { Readable } from 'node:stream';

/** One upstream failure as the client library reports it; the input of classifyReply. */
export interface UpstreamFailureReport {
  responseCode?: number;
  response?: string;
  code?: string;
  command?: string;
  message: string;
  /** The system code nodemailer replaced with its own (ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION, CERT_HAS_EXPIRED...). */
  originalCode?: string;
}

export interface RecipientRejection {
  rcpt: string;
  failure: UpstreamFailureReport;
}

/** What became of one submission: the upstream took it for `accepted`, refused `rejected`. */
export interface SubmitResult {
  accepted: string[];
  rejected: RecipientRejection[];
  /** The upstream's final reply to DATA, for the log. */
  response?: string;
  /** Something the operator should know although the message went (logged as a warning). */
  warning?: string;
}

/** One message for a submitter: the envelope and the bytes to send. */
export interface SubmitMessage {
  id: string;
  from: string;
  to: string[];
  raw: Readable;
  /**
   * Attempts made before this one (0 or absent: the first). A route without an idempotency key
   * (Graph) checks whether an earlier one went out before sending again.
   */
  earlierAttempts?: number;
}

/**
 * Where a delivery attempt hands a message: Exchange Online over SMTP, or the outbox folder of
 * the embedded default. Throws SubmitError when nothing was accepted.
 */
export interface Submitter {
  submit(message: SubmitMessage): Promise<SubmitResult>;
  close(): Promise<void>;
}

/** The submission failed as a whole: no recipient has the message. */
export class SubmitError extends Error {
  constructor(
    readonly failure: UpstreamFailureReport,
    readonly rejected: RecipientRejection[] = [],
    options?: { cause?: unknown },
  ) {
    super(failure.message, options);
    this.name = 'SubmitError';
  }
}
