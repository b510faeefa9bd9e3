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
}

/**
 * Where a delivery attempt hands a message: Exchange Online over SMTP, or the outbox folder of
 * the embedded default. Throws SubmitError when nothing was accepted.
 */
export interface Submitter {
  submit(message: { id: string; from: string; to: string[]; raw: Readable }): Promise<SubmitResult>;
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
