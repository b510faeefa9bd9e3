import type { MessageEnvelope } from '../../contract/messageEnvelope.ts';
import { buildFailureNotice, type NoticeKind } from '../../delivery/notices/buildFailureNotice.ts';
import { noticeLoopRisk } from '../../delivery/notices/originalHeaders.ts';
import type { GeneratedMail } from '../../delivery/notices/submitGeneratedMail.ts';

/**
 * Who gets the notice about a dead-lettered message: those the agent named at handoff
 * (`envelope.noticeTo`: the sender and/or its admin, by its `notices` settings) and the cloud's own
 * admin address (the function's failureNoticeTo, the worker's notices.admin), each once however
 * it is capitalised. A queue message from an agent older than noticeTo gets only the latter.
 */
export function cloudNoticeAddresses(envelope: Pick<MessageEnvelope, 'noticeTo'>, adminTo: string | undefined): string[] {
  const addresses: string[] = [];
  for (const address of [...(envelope.noticeTo ?? []), ...(adminTo ? [adminTo] : [])]) {
    if (!addresses.some((a) => a.toLowerCase() === address.toLowerCase())) addresses.push(address);
  }
  return addresses;
}

/** What the cloud tells one addressee about a dead-lettered message, and who it is from and to. */
export interface CloudNoticeDetails {
  /** Dead-lettered (`undeliverable`), or held for the operator and still tried (`delayed`). */
  kind: NoticeKind;
  /** The From header: the upstream mailbox (Exchange Online refuses another From with 5.7.60). */
  from: string;
  to: string;
  reason: string;
  reply?: string;
  fix?: string;
  rcpts: string[];
  /** The relay's name in the report (Reporting-MTA): the function or worker. */
  reportingHost: string;
  now: Date;
}

/**
 * The RFC 3464 report the office box sends (delivery/notices/), for a message the cloud moved to
 * the dead-letter queue: to one address (cloudNoticeAddresses), with envelope sender <>. None for a
 * message from <> or one a program generated (no loops): `suppressed` says why.
 */
export function cloudFailureNotice(
  envelope: MessageEnvelope,
  headerSection: Buffer,
  details: CloudNoticeDetails,
): { mail: GeneratedMail; messageId: string } | { suppressed: string } {
  const loop = noticeLoopRisk(envelope.mailFrom, headerSection);
  if (loop) return { suppressed: loop };
  const notice = buildFailureNotice({
    kind: details.kind,
    reportingHost: details.reportingHost,
    from: details.from,
    to: details.to,
    original: { id: envelope.id, receivedAt: envelope.receivedAt, client: envelope.client, mailFrom: envelope.mailFrom, ...(envelope.sendAs ? { sendAs: envelope.sendAs } : {}), headerSection },
    recipients: details.rcpts.map((rcpt) => ({ rcpt, ...(details.reply ? { reply: details.reply } : {}) })),
    reason: details.reason,
    ...(details.fix ? { fix: details.fix } : {}),
    lastAttemptAt: details.now.toISOString(),
    now: details.now,
    resendHint: `\`smarthost failed\` lists it in the dead-letter queue and \`smarthost redrive\` sends it again once the cause is fixed.`,
  });
  return { mail: { id: `notice-${details.kind}-${envelope.id}`, envelopeFrom: '', to: [details.to], raw: notice.raw }, messageId: notice.messageId };
}
