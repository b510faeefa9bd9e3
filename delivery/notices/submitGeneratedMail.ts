import { Readable } from 'node:stream';
import type { SubmitResult, Submitter } from '../smtp/submission.ts';

/** A mail the relay writes itself (an alert, a failure notice), for the upstream submitter. */
export interface GeneratedMail {
  id: string;
  /** Envelope sender: the upstream mailbox for alerts, '' (the null sender) for failure notices. */
  envelopeFrom: string;
  to: string[];
  raw: Buffer;
}

/**
 * Submits a generated mail through the agent's own upstream submitter: the From header is the
 * upstream mailbox (Exchange Online refuses another From with 5.7.60). Throws SubmitError when refused.
 * The Graph route sends as the mailbox whatever the envelope sender (sendMail has no envelope).
 */
export async function submitGeneratedMail(submitter: Submitter, mail: GeneratedMail): Promise<SubmitResult> {
  return submitter.submit({ id: mail.id, from: mail.envelopeFrom, to: mail.to, raw: Readable.from([mail.raw]) });
}
