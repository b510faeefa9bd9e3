import { Readable } from 'node:stream';
import { randomBytes } from 'node:crypto';
import type { MessageEnvelope } from '../../contract/messageEnvelope.ts';
import type { Submitter } from '../../delivery/smtp/submission.ts';

/**
 * A short non-delivery notice to the operator: which message, from which device, to whom, and
 * the upstream's reply. Never the message itself (it may be a confidential scan).
 */
export function failureNotice(envelope: MessageEnvelope, details: { from: string; to: string; reason: string; reply?: string; rcpts: string[] }): { from: string; to: string[]; raw: Buffer } {
  const lines = [
    `From: ${details.from}`,
    `To: ${details.to}`,
    `Subject: Undeliverable: message ${envelope.id} from ${envelope.client.name}`,
    `Date: ${new Date().toUTCString()}`,
    `Message-ID: <${randomBytes(12).toString('hex')}@smarthost.notice>`,
    'Auto-Submitted: auto-generated',
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=utf-8',
    'Content-Transfer-Encoding: 8bit',
    '',
    'smarthost could not deliver a message.',
    '',
    `Message id:   ${envelope.id}`,
    `Received:     ${envelope.receivedAt} from ${envelope.client.name} (${envelope.client.ip})`,
    `Sender:       ${envelope.sendAs ?? (envelope.mailFrom || '<>')}`,
    `Recipients:   ${details.rcpts.join(', ')}`,
    `Reason:       ${details.reason}`,
    ...(details.reply ? [`Server reply: ${details.reply}`] : []),
    '',
    'The message is kept in the dead-letter queue; `smarthost failed` lists it and',
    '`smarthost redrive` sends it again once the cause is fixed.',
    '',
  ];
  return { from: details.from, to: [details.to], raw: Buffer.from(lines.join('\r\n'), 'utf8') };
}

/** Sends a notice through the same upstream; a notice that fails is logged, never retried. */
export async function sendFailureNotice(submitter: Submitter, notice: { from: string; to: string[]; raw: Buffer }, id: string): Promise<void> {
  await submitter.submit({ id: `notice-${id}`, from: notice.from, to: notice.to, raw: Readable.from([notice.raw]) });
}
