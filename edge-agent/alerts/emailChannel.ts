import type { Submitter } from '../../delivery/smtp/submission.ts';
import { encodeHeader, encodeText, mailDate, messageIdHost, wrapLine } from '../../delivery/notices/mailText.ts';
import { submitGeneratedMail } from '../../delivery/notices/submitGeneratedMail.ts';
import type { AlertNotice, AlertOrigin } from './alertNotice.ts';
import { headline, noticeLines } from './alertPayloads.ts';

/**
 * The alert mail: From the upstream mailbox (Exchange Online refuses another From with 5.7.60),
 * Auto-Submitted so that auto-responders and our own failure notices leave it alone.
 */
export function alertMail(notice: AlertNotice, origin: AlertOrigin, from: string, to: string, now: Date): Buffer {
  const lines = [...noticeLines(notice)];
  if (notice.emailBlocked) {
    lines.push(
      '',
      `This alert could not be mailed while ${notice.emailBlocked.reason} (from ${notice.emailBlocked.since} to ${now.toISOString()}); it went by the other alert channels meanwhile.`,
    );
  }
  lines.push('', `Relay: ${origin.hostname}`, `Condition: ${notice.condition}`, `${notice.kind === 'raised' ? 'Raised' : 'Cleared'}: ${notice.at}`, '', '-- smarthost (automatic alert; replies are not read)');
  const { encoding, body: encoded } = encodeText(lines.flatMap(wrapLine).join('\r\n'));
  const header = [
    `From: ${from}`,
    `To: ${to}`,
    `Subject: ${encodeHeader(headline(notice, origin))}`,
    `Date: ${mailDate(now)}`,
    `Message-ID: <alert-${notice.id}@${messageIdHost(origin.hostname)}>`,
    'Auto-Submitted: auto-generated',
    'X-Auto-Response-Suppress: All',
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=utf-8',
    `Content-Transfer-Encoding: ${encoding}`,
  ];
  return Buffer.from(`${header.join('\r\n')}\r\n\r\n${encoded}\r\n`, 'utf8');
}

/** Submits the alert mail through the agent's own upstream submitter. Throws SubmitError when it is refused. */
export async function mailAlert(submitter: Submitter, notice: AlertNotice, origin: AlertOrigin, from: string, to: string, now: Date): Promise<void> {
  const raw = alertMail(notice, origin, from, to, now);
  await submitGeneratedMail(submitter, { id: `alert-${notice.id}`, envelopeFrom: from, to: [to], raw });
}
