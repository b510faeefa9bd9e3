import { SmtpReplyError } from '../smtpReplyError.ts';

/** The message could not be made durable; the device must keep it and try again. */
export class SpoolWriteError extends SmtpReplyError {
  constructor(cause: unknown) {
    super(451, '4.3.0 Could not store the message, try again later', { cause });
    this.name = 'SpoolWriteError';
  }
}

/** The spool is at spool.maxBytes: refuse new mail rather than drop what is queued. */
export class SpoolFullError extends SmtpReplyError {
  constructor() {
    super(452, '4.3.1 Insufficient system storage, try again later');
    this.name = 'SpoolFullError';
  }
}
