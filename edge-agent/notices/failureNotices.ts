import { hostname } from 'node:os';
import type { DeliveryLogger } from '../../delivery/logger.ts';
import { buildFailureNotice, type NoticeRecipient } from '../../delivery/notices/buildFailureNotice.ts';
import { readHeaderSection } from '../../delivery/notices/originalHeaders.ts';
import { submitGeneratedMail } from '../../delivery/notices/submitGeneratedMail.ts';
import { RollingCount } from '../../delivery/pool/rollingCount.ts';
import type { Submitter } from '../../delivery/smtp/submission.ts';
import type { AgentConfig } from '../config/agentConfigSchema.ts';
import type { AttemptRecord } from '../spool-delivery/spoolDeliveryLoop.ts';
import type { Spool } from '../spool/spool.ts';
import type { SpoolHistory } from '../spool/spoolHistory.ts';
import { noticeTargets } from './noticeTargets.ts';

/**
 * Notices one address gets per hour at most: a device that fails fifty scans in a row tells its
 * sender ten times, not fifty, and a notice storm cannot trip Exchange's receiving limit.
 */
export const NOTICES_PER_RECIPIENT_PER_HOUR = 10;
const HOUR_MS = 3_600_000;

/** Whether any failure notice can go out with this configuration (else nothing is started). */
export function noticesWanted(config: Pick<AgentConfig, 'notices' | 'clients'>): boolean {
  return config.notices.notify !== 'none' || config.clients.some((c) => c.notices !== undefined && c.notices !== 'none');
}

export interface FailureNoticesOptions {
  config: Pick<AgentConfig, 'notices' | 'clients'>;
  spool: Pick<Spool, 'readFailure' | 'findMessage'>;
  history: Pick<SpoolHistory, 'read' | 'appendBeside'> | undefined;
  /** The upstream the notice goes through (the pool's first mailbox) and the mailbox it sends as. */
  mail: { submitter: Submitter; from: () => Promise<string | undefined> };
  logger: DeliveryLogger;
  reportingHost?: string;
  now?: () => number;
}

/**
 * Sends an RFC 3464 "Undeliverable" notice when the spool delivery loop gives a message up (it
 * moved to failed/): to its sender and/or the admin (`notices`), with envelope sender <> so that no
 * one answers it, at most one per message (the history says whether one went), each recorded in
 * the message's history.
 */
export class FailureNotices {
  private readonly perRecipient = new Map<string, RollingCount>();
  private readonly running = new Set<Promise<void>>();
  private readonly now: () => number;

  constructor(private readonly options: FailureNoticesOptions) {
    this.now = options.now ?? Date.now;
  }

  observe(loop: { on(event: 'attempt', listener: (record: AttemptRecord) => void): unknown }): void {
    loop.on('attempt', (record) => {
      if (record.action !== 'failed') return;
      const task = this.notify(record.id).catch((error: unknown) =>
        this.options.logger.error({ messageId: record.id, err: String(error) }, 'could not send the failure notice'),
      );
      this.running.add(task);
      void task.finally(() => this.running.delete(task));
    });
  }

  /** Waits for the notices under way (before the upstream submitter closes). */
  async stop(): Promise<void> {
    await Promise.all([...this.running]);
  }

  async notify(id: string): Promise<void> {
    const { spool, history, logger, config, mail } = this.options;
    if (history && (await history.read(id)).some((e) => e.type === 'notice' && e.kind === 'undeliverable' && e.sent)) return;
    const [failure, found] = await Promise.all([spool.readFailure(id), spool.findMessage(id)]);
    if (!failure || !found || found.where !== 'failed') return;
    const headerSection = await readHeaderSection(found.body);
    const { envelope } = found;
    const client = config.clients.find((c) => c.name === envelope.client.name);
    const targets = noticeTargets({ notices: config.notices, ...(client?.notices ? { clientTarget: client.notices } : {}), mailFrom: envelope.mailFrom, headerSection });
    for (const reason of targets.suppressed) logger.info({ messageId: id, reason }, 'no failure notice');
    if (targets.to.length === 0) return;
    const refused: NoticeRecipient[] = failure.state.rejectedRcpts.map((r) => ({ rcpt: r.rcpt, reply: r.reply }));
    const owed = (failure.state.pendingRcpts ?? []).filter((rcpt) => !refused.some((r) => r.rcpt === rcpt));
    const recipients = [...refused, ...owed.map((rcpt) => ({ rcpt, ...(failure.reply ? { reply: failure.reply } : {}) }))];
    const from = (await mail.from().catch(() => undefined)) ?? config.notices.admin;
    if (!from) {
      logger.warn({ messageId: id }, 'no failure notice: the upstream has no mailbox to send it as (set notices.admin)');
      return;
    }
    for (const to of targets.to) {
      const at = new Date(this.now());
      if (!this.takeRate(to, at.getTime())) {
        logger.warn({ messageId: id, to }, `no failure notice: ${to} got ${NOTICES_PER_RECIPIENT_PER_HOUR} this hour`);
        await this.record(id, to, false, `${to} got ${NOTICES_PER_RECIPIENT_PER_HOUR} notices this hour`);
        continue;
      }
      const notice = buildFailureNotice({
        kind: 'undeliverable',
        reportingHost: this.options.reportingHost ?? hostname(),
        from,
        to,
        original: { id, receivedAt: envelope.receivedAt, client: envelope.client, mailFrom: envelope.mailFrom, ...(envelope.sendAs ? { sendAs: envelope.sendAs } : {}), headerSection },
        recipients,
        reason: failure.reason,
        ...(failure.operatorAction ? { fix: failure.operatorAction } : {}),
        lastAttemptAt: failure.failedAt,
        now: at,
      });
      try {
        await submitGeneratedMail(mail.submitter, { id: `notice-${id}`, envelopeFrom: '', to: [to], raw: notice.raw });
        logger.info({ messageId: id, to, noticeMessageId: notice.messageId }, 'failure notice sent');
        await this.record(id, to, true, notice.messageId);
      } catch (error) {
        logger.warn({ messageId: id, to, err: String(error) }, 'the upstream refused the failure notice');
        await this.record(id, to, false, `the upstream refused it: ${error instanceof Error ? error.message : String(error)}`);
      }
    }
  }

  private takeRate(to: string, now: number): boolean {
    const key = to.toLowerCase();
    let count = this.perRecipient.get(key);
    if (!count) this.perRecipient.set(key, (count = new RollingCount(HOUR_MS)));
    if (count.roomAt(1, NOTICES_PER_RECIPIENT_PER_HOUR, now) > now) return false;
    count.add(1, now);
    return true;
  }

  private async record(messageId: string, to: string, sent: boolean, detail: string): Promise<void> {
    try {
      await this.options.history?.appendBeside({ type: 'notice', kind: 'undeliverable', messageId, at: new Date(this.now()).toISOString(), to, sent, detail });
    } catch (error) {
      this.options.logger.warn({ messageId, err: String(error) }, 'could not record the failure notice in the history');
    }
  }
}
