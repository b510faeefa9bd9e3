import { Readable } from 'node:stream';
import type { Submitter } from '../../delivery/smtp/submission.ts';
import type { AlertNotice, AlertOrigin } from './alertNotice.ts';
import { headline, noticeLines } from './alertPayloads.ts';

/** Lines of a mail stay well under SMTP's 998-octet limit. */
const MAX_LINE = 900;

function encodeHeader(value: string): string {
  // eslint-disable-next-line no-control-regex
  return /^[\x20-\x7e]*$/.test(value) ? value : `=?utf-8?B?${Buffer.from(value, 'utf8').toString('base64')}?=`;
}

function wrap(line: string): string[] {
  const out: string[] = [];
  for (let rest = line; ; rest = rest.slice(MAX_LINE)) {
    out.push(rest.slice(0, MAX_LINE));
    if (rest.length <= MAX_LINE) return out;
  }
}

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
  const body = lines.flatMap(wrap).join('\r\n');
  const ascii = /^[\x00-\x7f]*$/.test(body); // eslint-disable-line no-control-regex
  const header = [
    `From: ${from}`,
    `To: ${to}`,
    `Subject: ${encodeHeader(headline(notice, origin))}`,
    `Date: ${now.toUTCString().replace('GMT', '+0000')}`,
    `Message-ID: <alert-${notice.id}@${origin.hostname.replace(/[^A-Za-z0-9.-]/g, '') || 'smarthost'}>`,
    'Auto-Submitted: auto-generated',
    'X-Auto-Response-Suppress: All',
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=utf-8',
    `Content-Transfer-Encoding: ${ascii ? '7bit' : 'base64'}`,
  ];
  const encoded = ascii ? body : (Buffer.from(body, 'utf8').toString('base64').match(/.{1,76}/g) ?? []).join('\r\n');
  return Buffer.from(`${header.join('\r\n')}\r\n\r\n${encoded}\r\n`, 'utf8');
}

/** Submits the alert mail through the agent's own upstream submitter. Throws SubmitError when it is refused. */
export async function mailAlert(submitter: Submitter, notice: AlertNotice, origin: AlertOrigin, from: string, to: string, now: Date): Promise<void> {
  const raw = alertMail(notice, origin, from, to, now);
  await submitter.submit({ id: `alert-${notice.id}`, from, to: [to], raw: Readable.from([raw]) });
}
