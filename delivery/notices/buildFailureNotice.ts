import { randomBytes } from 'node:crypto';
import { encodeHeader, encodeText, mailDate, messageIdHost, wrapLine } from './mailText.ts';
import { headerValue } from './originalHeaders.ts';

/** Given up for good (RFC 3464 Action: failed), or kept back and still to be tried (Action: delayed). */
export type NoticeKind = 'undeliverable' | 'delayed';

/** One recipient the notice is about, with the upstream's reply that settled it. */
export interface NoticeRecipient {
  rcpt: string;
  /** The SMTP reply (or the client's error text when there was none). */
  reply?: string;
}

export interface FailureNoticeInput {
  kind: NoticeKind;
  /** The relay's host name (Reporting-MTA). */
  reportingHost: string;
  /** The From header: the upstream mailbox (Exchange Online refuses another From with 5.7.60). */
  from: string;
  /** Who the notice is for. */
  to: string;
  original: {
    /** The agent's message id. */
    id: string;
    receivedAt: string;
    client: { name: string; ip: string };
    /** The device's envelope sender ('' for the null sender). */
    mailFrom: string;
    sendAs?: string;
    /** The original's header section (never its body). */
    headerSection: Buffer;
  };
  recipients: NoticeRecipient[];
  /** One line on what happened (the classifier's reason, or why it was given up). */
  reason: string;
  /** What the admin should change, when known (the PowerShell command with the values filled in). */
  fix?: string;
  /** The time of the last attempt, when there was one. */
  lastAttemptAt?: string;
  /** How the operator sends it again, where that is not `smarthost resend <id>` (the cloud's dead-letter queue). */
  resendHint?: string;
  now: Date;
}

/** The notice's bytes and what a history or log line says about it. */
export interface FailureNotice {
  raw: Buffer;
  subject: string;
  messageId: string;
}

const ENHANCED = /\b([245])\.(\d{1,3})\.(\d{1,3})\b/;

/**
 * The RFC 3463 status for a recipient. A reply's own enhanced code is kept; a delayed recipient
 * is reported in class 4 (RFC 3464: `delayed` is not final), a failed one without a code as 5.0.0,
 * or 4.4.7 (delivery time expired) when its last reply was only a temporary one.
 */
export function recipientStatus(kind: NoticeKind, reply: string | undefined): string {
  const match = reply ? ENHANCED.exec(reply) : null;
  const basic = reply ? /^\s*([245])\d\d\b/.exec(reply)?.[1] : undefined;
  if (kind === 'delayed') return match ? `4.${match[2]}.${match[3]}` : '4.0.0';
  if (match) return `${match[1]}.${match[2]}.${match[3]}`;
  return basic === '4' ? '4.4.7' : '5.0.0';
}

/** A header-safe, ASCII-only single line (a reply may carry CRLFs or 8-bit text). */
function oneAsciiLine(text: string, max = 900): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\r\n\t]+/g, ' ').replace(/[^\x20-\x7e]/g, '?').trim().slice(0, max);
}

/** An address for `Final-Recipient: rfc822;` (RFC 3464 wants the bare address). */
function bareAddress(rcpt: string): string {
  return oneAsciiLine(rcpt.replace(/^<|>$/g, ''), 400);
}

function humanPart(input: FailureNoticeInput, subject: string | undefined, headerMessageId: string | undefined): string {
  const { original, kind } = input;
  const sender = original.sendAs ? `${original.sendAs} (the device gave ${original.mailFrom || '<>'})` : original.mailFrom || '<>';
  const lines = [
    kind === 'undeliverable' ? 'A message relayed by smarthost could not be delivered, and nothing more will be tried.' : 'A message relayed by smarthost has not been delivered yet: it is held until the problem below is fixed.',
    '',
    `Device:      ${original.client.name} (${original.client.ip})`,
    `Sender:      ${sender}`,
    `Subject:     ${subject ?? '(none)'}`,
    `Message-ID:  ${headerMessageId ?? '(none)'}`,
    `Received:    ${original.receivedAt}`,
    ...(input.lastAttemptAt ? [`Last try:    ${input.lastAttemptAt}`] : []),
    `Relay id:    ${original.id}`,
    '',
    kind === 'undeliverable' ? 'Not delivered to:' : 'Still waiting for:',
    ...input.recipients.flatMap((r) => [`  ${r.rcpt}`, ...(r.reply ? [`    Microsoft 365 answered: ${r.reply}`] : [])]),
    '',
    `What happened: ${input.reason}`,
    '',
    input.fix ? `What the admin should do: ${input.fix}` : 'What the admin should do: look at the reply above; `smarthost trace ' + original.id + '` shows every attempt.',
    kind === 'undeliverable'
      ? (input.resendHint ?? `Once it is fixed, \`smarthost resend ${original.id}\` sends the message again (it is kept in the failed area).`)
      : 'The message goes out by itself once the cause is fixed; no one needs to send it again.',
    '',
    'The original message is not attached (it may be a confidential scan); its header is.',
    '',
    '-- smarthost (automatic notice; replies are not read)',
  ];
  return lines.flatMap(wrapLine).join('\r\n');
}

function deliveryStatusPart(input: FailureNoticeInput): string {
  const perMessage = [`Reporting-MTA: dns; ${oneAsciiLine(input.reportingHost, 255) || 'smarthost'}`, `X-Smarthost-Message-Id: ${input.original.id}`, `Arrival-Date: ${mailDate(new Date(input.original.receivedAt))}`];
  const perRecipient = input.recipients.map((r) => {
    const fields = [
      `Final-Recipient: rfc822; ${bareAddress(r.rcpt)}`,
      `Action: ${input.kind === 'undeliverable' ? 'failed' : 'delayed'}`,
      `Status: ${recipientStatus(input.kind, r.reply)}`,
    ];
    if (r.reply) fields.push(`Diagnostic-Code: smtp; ${oneAsciiLine(r.reply)}`);
    if (input.lastAttemptAt) fields.push(`Last-Attempt-Date: ${mailDate(new Date(input.lastAttemptAt))}`);
    return fields.join('\r\n');
  });
  return [perMessage.join('\r\n'), ...perRecipient].join('\r\n\r\n');
}

/**
 * A delivery status notification (RFC 3464): multipart/report with the human part (which device
 * sent what, to whom, when, what Microsoft 365 answered and what the admin should do), the
 * message/delivery-status part per recipient, and the original's header section as
 * text/rfc822-headers. Never the original's body. Auto-Submitted: auto-replied (RFC 3834), so that
 * other systems, and this relay, do not answer it.
 */
export function buildFailureNotice(input: FailureNoticeInput): FailureNotice {
  const header = input.original.headerSection;
  const subject = headerValue(header, 'Subject');
  const headerMessageId = headerValue(header, 'Message-ID');
  const prefix = input.kind === 'undeliverable' ? 'Undeliverable' : 'Delayed';
  const noticeSubject = `${prefix}: ${subject ?? `message from ${input.original.client.name}`}`;
  const boundary = `=_smarthost-report-${randomBytes(12).toString('hex')}`;
  const messageId = `<notice-${input.kind}-${input.original.id}-${randomBytes(4).toString('hex')}@${messageIdHost(input.reportingHost)}>`;
  const human = encodeText(humanPart(input, subject, headerMessageId));
  // eslint-disable-next-line no-control-regex
  const headersAscii = /^[\x00-\x7f]*$/.test(header.toString('latin1'));
  const quoted = header.length === 0 || header.subarray(-1).toString() === '\n' ? header : Buffer.concat([header, Buffer.from('\r\n')]);
  const top = [
    `From: Mail Delivery System <${input.from}>`,
    `To: ${input.to}`,
    `Subject: ${encodeHeader(oneSubjectLine(noticeSubject))}`,
    `Date: ${mailDate(input.now)}`,
    `Message-ID: ${messageId}`,
    ...(headerMessageId ? [`In-Reply-To: ${oneAsciiLine(headerMessageId, 900)}`] : []),
    'Auto-Submitted: auto-replied',
    'X-Auto-Response-Suppress: All',
    'MIME-Version: 1.0',
    `Content-Type: multipart/report; report-type=delivery-status; boundary="${boundary}"`,
  ];
  const parts = [
    Buffer.from(
      [
        ...top,
        '',
        'This is a delivery status notification (RFC 3464).',
        '',
        `--${boundary}`,
        'Content-Type: text/plain; charset=utf-8',
        `Content-Transfer-Encoding: ${human.encoding}`,
        '',
        human.body,
        '',
        `--${boundary}`,
        'Content-Type: message/delivery-status',
        'Content-Transfer-Encoding: 7bit',
        '',
        deliveryStatusPart(input),
        '',
        `--${boundary}`,
        'Content-Type: text/rfc822-headers',
        `Content-Transfer-Encoding: ${headersAscii ? '7bit' : '8bit'}`,
        '',
        '',
      ].join('\r\n'),
      'utf8',
    ),
    quoted,
    Buffer.from(`\r\n--${boundary}--\r\n`, 'utf8'),
  ];
  return { raw: Buffer.concat(parts), subject: noticeSubject, messageId };
}

/** A subject on one line, short enough for one header field. */
function oneSubjectLine(subject: string): string {
  return subject.replace(/[\r\n\t]+/g, ' ').slice(0, 200);
}
