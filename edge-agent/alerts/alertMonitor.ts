import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import type { DeliveryLogger } from '../../delivery/logger.ts';
import type { Submitter } from '../../delivery/smtp/submission.ts';
import type { AlertsConfig } from '../config/alertsSchema.ts';
import { CONDITION_IDS, CONDITION_TITLES, evaluateConditions, type ConditionId, type RaisedCondition } from './alertConditions.ts';
import type { AlertNotice, AlertOrigin } from './alertNotice.ts';
import { emptyAlertState, readAlertState, writeAlertState, type AlertState } from './alertStateFile.ts';
import type { AlertSignals } from './alertSignals.ts';
import { mailAlert } from './emailChannel.ts';
import { postWebhook, webhookKey } from './webhookChannel.ts';

/** Where the alert state is kept, inside the spool folder (a folder of its own: the spool lists queue/ and failed/). */
export function alertStatePath(spoolDir: string): string {
  return join(spoolDir, 'alerts', 'state.json');
}

/**
 * Notices kept for channels that keep failing, at most; the oldest go first. An outage of every
 * channel for days then costs a bounded file.
 */
const MAX_PENDING_NOTICES = 100;

export interface AlertMonitorOptions {
  config: AlertsConfig;
  /** Where the conditions' inputs come from (tests give a fixed snapshot). */
  signals: Pick<AlertSignals, 'snapshot' | 'restoreStreaks' | 'currentStreaks'>;
  logger: DeliveryLogger;
  statePath: string;
  origin: AlertOrigin;
  /** The agent's upstream submitter and the mailbox it sends as (the From of alert mail); absent: no mail. */
  mail?: { submitter: Submitter; from: () => Promise<string | undefined> };
  now?: () => number;
}

/**
 * Looks at the conditions every `interval`, raises each once and clears it once, and hands each
 * notice to every channel until it took it: webhooks, and mail to the admin through the upstream
 * (held back, with the reason said later, while the upstream is what is broken).
 */
export class AlertMonitor {
  private state: AlertState = emptyAlertState();
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;
  private readonly now: () => number;

  constructor(private readonly options: AlertMonitorOptions) {
    this.now = options.now ?? Date.now;
  }

  /** Reads the saved state (a restart neither raises again nor forgets) and starts the timer. */
  async start(): Promise<void> {
    try {
      this.state = await readAlertState(this.options.statePath);
    } catch (error) {
      this.options.logger.warn({ err: String(error), path: this.options.statePath }, 'could not read the alert state; starting with none raised');
      this.state = emptyAlertState();
    }
    this.options.signals.restoreStreaks(this.state.streaks);
    this.timer = setInterval(() => void this.evaluate(), this.options.config.interval);
    this.timer.unref();
  }

  /** Waits for an evaluation under way, then stops. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    await this.running;
  }

  /** Conditions raised now, as the saved state has them. */
  get active(): ConditionId[] {
    return CONDITION_IDS.filter((id) => this.state.active[id] !== undefined);
  }

  /** Notices some channel still owes. */
  get pending(): readonly AlertNotice[] {
    return this.state.pending;
  }

  /** One look: raise, clear, send what is owed, save. Runs one at a time. */
  evaluate(): Promise<void> {
    this.running ??= this.evaluateOnce()
      .catch((error: unknown) => this.options.logger.error({ err: String(error) }, 'alert evaluation failed'))
      .finally(() => {
        this.running = undefined;
      });
    return this.running;
  }

  private async evaluateOnce(): Promise<void> {
    if (this.stopped) return;
    const { config } = this.options;
    const now = this.now();
    const raised = evaluateConditions(await this.options.signals.snapshot(), config.thresholds, now);
    const raisedIds = new Set(raised.map((r) => r.id));
    for (const condition of raised) {
      if (this.state.active[condition.id]) continue;
      this.state.active[condition.id] = { since: new Date(now).toISOString() };
      this.queue(this.notice('raised', condition, now));
      this.options.logger.warn({ alert: condition.id, detail: condition.detail }, `alert raised: ${condition.title}`);
    }
    for (const id of CONDITION_IDS) {
      const active = this.state.active[id];
      if (!active || raisedIds.has(id)) continue;
      delete this.state.active[id];
      this.queue(this.notice('cleared', { id, title: CONDITION_TITLES[id], detail: '', upstreamBroken: false }, now, active.since));
      this.options.logger.info({ alert: id, since: active.since }, `alert cleared: ${CONDITION_TITLES[id]}`);
    }
    await this.send(raised.filter((r) => r.upstreamBroken));
    this.state.streaks = this.options.signals.currentStreaks;
    await writeAlertState(this.options.statePath, this.state).catch((error: unknown) =>
      this.options.logger.warn({ err: String(error), path: this.options.statePath }, 'could not save the alert state'),
    );
  }

  private notice(kind: AlertNotice['kind'], condition: RaisedCondition, now: number, since?: string): AlertNotice {
    const { config } = this.options;
    return {
      id: randomUUID(),
      kind,
      condition: condition.id,
      title: condition.title,
      detail: condition.detail,
      ...(condition.fix ? { fix: condition.fix } : {}),
      at: new Date(now).toISOString(),
      ...(since ? { since } : {}),
      webhooksOwed: config.webhooks.map(webhookKey),
      emailOwed: config.email !== false && this.options.mail !== undefined,
    };
  }

  private queue(notice: AlertNotice): void {
    this.state.pending.push(notice);
    const over = this.state.pending.length - MAX_PENDING_NOTICES;
    if (over > 0) {
      const dropped = this.state.pending.splice(0, over);
      this.options.logger.error({ dropped: dropped.map((n) => `${n.kind} ${n.condition} ${n.at}`) }, 'alert notices dropped: no channel took them');
    }
  }

  /** Hands every owed notice to its channels; a channel that fails keeps it for the next look. */
  private async send(upstreamBroken: RaisedCondition[]): Promise<void> {
    const { config, logger, origin } = this.options;
    const webhooks = new Map(config.webhooks.map((w) => [webhookKey(w), w]));
    for (const notice of this.state.pending) {
      for (const key of [...notice.webhooksOwed]) {
        const webhook = webhooks.get(key);
        if (!webhook) {
          notice.webhooksOwed = notice.webhooksOwed.filter((k) => k !== key); // Removed from the config.
          continue;
        }
        try {
          await postWebhook(webhook, notice, origin, config.webhookTimeout);
          notice.webhooksOwed = notice.webhooksOwed.filter((k) => k !== key);
          logger.info({ alert: notice.condition, kind: notice.kind, format: webhook.format }, 'alert sent by webhook');
        } catch (error) {
          logger.warn({ alert: notice.condition, kind: notice.kind, err: String(error) }, 'could not send an alert by webhook; trying again at the next look');
        }
      }
      if (notice.emailOwed) await this.mail(notice, upstreamBroken);
    }
    this.state.pending = this.state.pending.filter((n) => n.emailOwed || n.webhooksOwed.length > 0);
  }

  private async mail(notice: AlertNotice, upstreamBroken: RaisedCondition[]): Promise<void> {
    const { config, logger, mail, origin } = this.options;
    if (config.email === false || !mail) {
      notice.emailOwed = false;
      return;
    }
    const nowIso = new Date(this.now()).toISOString();
    if (upstreamBroken.length > 0) {
      // Mail would go through the very upstream that is broken: it waits, and says so when it goes.
      notice.emailBlocked ??= { reason: upstreamBroken.map((c) => c.title.toLowerCase()).join(' and '), since: nowIso };
      return;
    }
    const from = (await mail.from().catch(() => undefined)) ?? config.email;
    try {
      await mailAlert(mail.submitter, notice, origin, from, config.email, new Date(this.now()));
      notice.emailOwed = false;
      logger.info({ alert: notice.condition, kind: notice.kind, to: config.email, blockedSince: notice.emailBlocked?.since }, 'alert mailed to the admin');
    } catch (error) {
      notice.emailBlocked ??= { reason: `the upstream refused it (${String(error instanceof Error ? error.message : error)})`, since: nowIso };
      logger.warn({ alert: notice.condition, kind: notice.kind, err: String(error) }, 'could not mail an alert to the admin; trying again at the next look');
    }
  }
}
