import { hostname } from 'node:os';
import type { DeliveryLogger } from '../../delivery/logger.ts';
import type { Readable } from 'node:stream';
import type { MessageEnvelope } from '../../contract/messageEnvelope.ts';
import { buildFailureNotice, type NoticeKind, type NoticeRecipient } from '../../delivery/notices/buildFailureNotice.ts';
import { readHeaderSection } from '../../delivery/notices/originalHeaders.ts';
import { submitGeneratedMail } from '../../delivery/notices/submitGeneratedMail.ts';
import { RollingCount } from '../../delivery/pool/rollingCount.ts';
import type { Submitter } from '../../delivery/smtp/submission.ts';
import type { AgentConfig } from '../config/agentConfigSchema.ts';
import type { AttemptRecord, HeldUntriedRecord } from '../spool-delivery/spoolDeliveryLoop.ts';
import { arrivalOf } from '../spool/messageId.ts';
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
  spool: Pick<Spool, 'readFailure' | 'findMessage' | 'readState'>;
  history: Pick<SpoolHistory, 'read' | 'appendBeside'> | undefined;
  /** The upstream the notice goes through (the pool's first mailbox) and the mailbox it sends as. */
  mail: { submitter: Submitter; from: () => Promise<string | undefined> };
  logger: DeliveryLogger;
  reportingHost?: string;
  now?: () => number;
}

/** What a notice says about its message, whichever kind it is. */
interface NoticeContent {
  kind: NoticeKind;
  id: string;
  envelope: MessageEnvelope;
  body: Readable;
  recipients: NoticeRecipient[];
  reason: string;
  fix?: string;
  lastAttemptAt?: string;
}

/**
 * Sends RFC 3464 notices about messages the spool delivery loop could not deliver: "Undeliverable"
 * when it gives one up (moved to failed/), "Delayed" when one is still held for the operator
 * `notices.heldAfter` after it arrived. To its sender and/or the admin (`notices`), with envelope
 * sender <> so that no one answers it, at most one of each kind per message (the history says
 * whether one went), each recorded in the message's history.
 */
export class FailureNotices {
  private readonly perRecipient = new Map<string, RollingCount>();
  private readonly running = new Set<Promise<void>>();
  /** Held messages waiting for their "Delayed" notice, by id. */
  private readonly delayTimers = new Map<string, NodeJS.Timeout>();
  private readonly now: () => number;

  constructor(private readonly options: FailureNoticesOptions) {
    this.now = options.now ?? Date.now;
  }

  observe(loop: {
    on(event: 'attempt', listener: (record: AttemptRecord) => void): unknown;
    on(event: 'held-untried', listener: (record: HeldUntriedRecord) => void): unknown;
  }): void {
    loop.on('attempt', (record) => {
      if (record.action === 'failed') {
        this.cancelDelayed(record.id);
        this.track(record.id, this.notify(record.id));
      } else if (record.event.decision.action === 'hold') this.armDelayed(record.id);
      else this.cancelDelayed(record.id);
    });
    loop.on('held-untried', (record) => {
      if (record.operatorAction) this.armDelayed(record.id);
    });
  }

  /**
   * Arms the "Delayed" notices of messages the spool held for the operator when the agent started
   * (their next attempt may be hours away): one state file read per queued message, only when
   * delayed notices are on.
   */
  async seedHeld(ids: string[]): Promise<void> {
    if (this.options.config.notices.heldAfter === 'off') return;
    for (const id of ids) {
      const state = await this.options.spool.readState(id).catch(() => undefined);
      if (state?.operatorAction) this.armDelayed(id);
    }
  }

  /** Waits for the notices under way (before the upstream submitter closes); arms no more. */
  async stop(): Promise<void> {
    for (const timer of this.delayTimers.values()) clearTimeout(timer);
    this.delayTimers.clear();
    await Promise.all([...this.running]);
  }

  /** The "Undeliverable" notice of a message in failed/. */
  async notify(id: string): Promise<void> {
    const { spool, history } = this.options;
    if (history && (await history.read(id)).some((e) => e.type === 'notice' && e.kind === 'undeliverable' && e.sent)) return;
    const [failure, found] = await Promise.all([spool.readFailure(id), spool.findMessage(id)]);
    if (!failure || !found || found.where !== 'failed') return;
    const refused: NoticeRecipient[] = failure.state.rejectedRcpts.map((r) => ({ rcpt: r.rcpt, reply: r.reply }));
    const owed = (failure.state.pendingRcpts ?? []).filter((rcpt) => !refused.some((r) => r.rcpt === rcpt));
    await this.send({
      kind: 'undeliverable',
      id,
      envelope: found.envelope,
      body: found.body,
      recipients: [...refused, ...owed.map((rcpt) => ({ rcpt, ...(failure.reply ? { reply: failure.reply } : {}) }))],
      reason: failure.reason,
      ...(failure.operatorAction ? { fix: failure.operatorAction } : {}),
      lastAttemptAt: failure.failedAt,
    });
  }

  /** The "Delayed" notice of a message still queued and held for the operator; none once one went, or when it is no longer held. */
  async notifyDelayed(id: string): Promise<void> {
    const { spool, history } = this.options;
    const events = history ? await history.read(id) : [];
    if (events.some((e) => e.type === 'notice' && e.sent)) return;
    const [state, found] = await Promise.all([spool.readState(id).catch(() => undefined), spool.findMessage(id)]);
    if (!found) return;
    if (found.where !== 'queue' || !state?.operatorAction) {
      found.body.destroy();
      return;
    }
    const last = events.filter((e) => e.type === 'attempt').at(-1);
    const reply = state.lastError;
    await this.send({
      kind: 'delayed',
      id,
      envelope: found.envelope,
      body: found.body,
      recipients: (state.pendingRcpts ?? found.envelope.rcptTo).map((rcpt) => ({ rcpt, ...(reply ? { reply } : {}) })),
      reason: (last?.type === 'attempt' ? last.reason : undefined) ?? 'held until the admin fixes the cause below',
      fix: state.operatorAction,
      ...(last ? { lastAttemptAt: last.at } : {}),
    });
  }

  private track(id: string, task: Promise<void>): void {
    const guarded = task.catch((error: unknown) => this.options.logger.error({ messageId: id, err: String(error) }, 'could not send the notice'));
    this.running.add(guarded);
    void guarded.finally(() => this.running.delete(guarded));
  }

  private armDelayed(id: string): void {
    const after = this.options.config.notices.heldAfter;
    if (after === 'off' || this.delayTimers.has(id)) return;
    const arrived = arrivalOf(id)?.getTime() ?? this.now();
    const timer = setTimeout(() => {
      this.delayTimers.delete(id);
      this.track(id, this.notifyDelayed(id));
    }, Math.max(0, arrived + after - this.now()));
    timer.unref();
    this.delayTimers.set(id, timer);
  }

  private cancelDelayed(id: string): void {
    clearTimeout(this.delayTimers.get(id));
    this.delayTimers.delete(id);
  }

  private async send(content: NoticeContent): Promise<void> {
    const { logger, config, mail } = this.options;
    const { kind, id, envelope } = content;
    const headerSection = await readHeaderSection(content.body);
    const client = config.clients.find((c) => c.name === envelope.client.name);
    const targets = noticeTargets({ notices: config.notices, ...(client?.notices ? { clientTarget: client.notices } : {}), mailFrom: envelope.mailFrom, headerSection });
    for (const reason of targets.suppressed) logger.info({ messageId: id, kind, reason }, 'no notice');
    if (targets.to.length === 0) return;
    const from = (await mail.from().catch(() => undefined)) ?? config.notices.admin;
    if (!from) {
      logger.warn({ messageId: id, kind }, 'no notice: the upstream has no mailbox to send it as (set notices.admin)');
      return;
    }
    for (const to of targets.to) {
      const at = new Date(this.now());
      if (!this.takeRate(to, at.getTime())) {
        logger.warn({ messageId: id, kind, to }, `no notice: ${to} got ${NOTICES_PER_RECIPIENT_PER_HOUR} this hour`);
        await this.record(kind, id, to, false, `${to} got ${NOTICES_PER_RECIPIENT_PER_HOUR} notices this hour`);
        continue;
      }
      const notice = buildFailureNotice({
        kind,
        reportingHost: this.options.reportingHost ?? hostname(),
        from,
        to,
        original: { id, receivedAt: envelope.receivedAt, client: envelope.client, mailFrom: envelope.mailFrom, ...(envelope.sendAs ? { sendAs: envelope.sendAs } : {}), headerSection },
        recipients: content.recipients,
        reason: content.reason,
        ...(content.fix ? { fix: content.fix } : {}),
        ...(content.lastAttemptAt ? { lastAttemptAt: content.lastAttemptAt } : {}),
        now: at,
      });
      try {
        await submitGeneratedMail(mail.submitter, { id: `notice-${kind}-${id}`, envelopeFrom: '', to: [to], raw: notice.raw });
        logger.info({ messageId: id, kind, to, noticeMessageId: notice.messageId }, 'notice sent');
        await this.record(kind, id, to, true, notice.messageId);
      } catch (error) {
        logger.warn({ messageId: id, kind, to, err: String(error) }, 'the upstream refused the notice');
        await this.record(kind, id, to, false, `the upstream refused it: ${error instanceof Error ? error.message : String(error)}`);
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

  private async record(kind: NoticeKind, messageId: string, to: string, sent: boolean, detail: string): Promise<void> {
    try {
      await this.options.history?.appendBeside({ type: 'notice', kind, messageId, at: new Date(this.now()).toISOString(), to, sent, detail });
    } catch (error) {
      this.options.logger.warn({ messageId, err: String(error) }, 'could not record the failure notice in the history');
    }
  }
}
