import { EventEmitter } from 'node:events';
import type { MessageEnvelope } from '../../contract/messageEnvelope.ts';
import { deliverMessage, type AttemptOutcome } from '../../delivery/deliverMessage.ts';
import { MAILBOX_BLOCK_MS } from '../../delivery/classifyReply.ts';
import type { DeliveryLogger } from '../../delivery/logger.ts';
import type { AttemptEvent } from '../../delivery/history/deliveryEvent.ts';
import { logAttempt } from '../../delivery/history/logAttempt.ts';
import { RepeatedFailureGuard, type RepeatedFailure } from '../../delivery/repeatedFailureGuard.ts';
import { nextRetryDelay, type RetryPolicy } from '../../delivery/retryPolicy.ts';
import { settleAttempt } from '../../delivery/settle/settleAttempt.ts';
import { SendRate } from '../../delivery/sendRate.ts';
import type { Submitter } from '../../delivery/smtp/submission.ts';
import type { DeliveryState, Spool } from '../spool/spool.ts';
import type { SpoolHistory } from '../spool/spoolHistory.ts';

export interface SpoolDeliveryLoopOptions {
  spool: Spool;
  submitter: Submitter;
  policy: RetryPolicy;
  logger: DeliveryLogger;
  /** Messages in flight at once; matches the upstream's connection limit. */
  concurrency: number;
  /** Deliveries started per minute at most (the upstream's rate limit); absent: no limit. */
  perMinute?: number;
  /** The mailbox the upstream authenticates as, for operator hints. */
  mailbox?: string;
  /** How long to hold all deliveries after the upstream throttles (432 4.3.2). */
  throttlePauseMs: number;
  /** Where each attempt's event is kept; absent: no history (some tests). */
  history?: SpoolHistory;
  /** How the message leaves, for the history: the upstream's host, or `outbox`. */
  route?: string;
  /** How often to look in the spool for messages put back by `smarthost resend`. */
  rescanIntervalMs?: number;
}

interface Pending {
  id: string;
  /** Kept while the queue is short; a backlog keeps only ids and reads each envelope when its turn comes. */
  envelope: MessageEnvelope | undefined;
  dueAt: number;
  /** Just accepted: no delivery state can exist yet, so none is read. */
  fresh: boolean;
}

/**
 * Waiting messages that keep their envelope in memory. Beyond this the envelope (~600 bytes of
 * strings and objects each) stays in the spool file until delivery: a backlog of 10,000 messages
 * (an upstream outage, or a burst at 30 deliveries a minute) then costs ~1 MB instead of ~6 MB.
 */
const ENVELOPES_IN_MEMORY = 256;

/** What became of one attempt: the message left the queue (delivered or failed), or waits for a retry. */
export interface AttemptRecord {
  id: string;
  action: 'delivered' | 'failed' | 'retry';
  attempts: number;
  reply?: string;
  /** The attempt's history event (metrics and the console read it). */
  event: AttemptEvent;
  /** Bytes of the message. */
  size: number;
}

/**
 * The embedded mode's delivery loop: takes spooled messages oldest first, delivers them with the
 * shared delivery core, and records each outcome in the spool before acting on the next one.
 */
/** A message kept back without an attempt because its sender's last attempts all failed the same way. */
export interface HeldUntriedRecord {
  id: string;
  reply: string;
}

export class SpoolDeliveryLoop extends EventEmitter<{ attempt: [AttemptRecord]; 'held-untried': [HeldUntriedRecord] }> {
  private readonly pending = new Map<string, Pending>();
  private readonly inFlight = new Map<string, Promise<void>>();
  private timer: NodeJS.Timeout | undefined;
  private timerDueAt = 0;
  private rescanTimer: NodeJS.Timeout | undefined;
  private pausedUntil = 0;
  private readonly rate: SendRate | undefined;
  private stopping = false;
  private idleWaiters: (() => void)[] = [];
  private readonly repeated = new RepeatedFailureGuard();
  /** Per class (RepeatedFailureGuard.classOf): messages held untried, made due at once on release. */
  private readonly heldUntried = new Map<string, Set<string>>();

  constructor(private readonly options: SpoolDeliveryLoopOptions) {
    super();
    this.rate = options.perMinute === undefined ? undefined : new SendRate(options.perMinute);
  }

  /** Schedules what the spool held at start, honouring each message's recorded next attempt. */
  async start(queued: MessageEnvelope[]): Promise<void> {
    for (const envelope of queued) {
      const state = await this.options.spool.readState(envelope.id);
      this.wait(envelope, state?.nextAttemptAt ? Date.parse(state.nextAttemptAt) : 0);
    }
    this.rescanTimer = setInterval(() => {
      this.rescan().catch((error: unknown) => this.options.logger.warn({ err: String(error) }, 'could not scan the spool'));
    }, this.options.rescanIntervalMs ?? 30_000);
    this.rescanTimer.unref();
    this.pump();
  }

  /** Picks up messages that appeared in the spool behind the worker's back (`smarthost resend`). */
  async rescan(): Promise<void> {
    for (const id of await this.options.spool.committedIds()) {
      if (!this.pending.has(id) && !this.inFlight.has(id) && !this.stopping) {
        // Delivered and removed since the listing: nothing to pick up.
        const envelope = await this.options.spool.readEnvelope(id).catch(() => undefined);
        const state = await this.options.spool.readState(id).catch(() => undefined);
        if (!envelope || this.pending.has(id) || this.inFlight.has(id)) {
          continue;
        }
        this.options.logger.info({ messageId: id }, 'picked up a message put back in the queue');
        // Put back by the operator: they expect it tried, so its class is no longer held.
        this.releaseClass(RepeatedFailureGuard.classOf(envelope));
        this.wait(envelope, state?.nextAttemptAt ? Date.parse(state.nextAttemptAt) : 0);
      }
    }
    this.pump();
  }

  /** A message the intake just committed. */
  enqueue(envelope: MessageEnvelope): void {
    if (this.stopping) {
      return; // It stays in the spool and is picked up at the next start.
    }
    if (this.pending.has(envelope.id) || this.inFlight.has(envelope.id)) {
      return; // A rescan found it between its rename and this call.
    }
    this.wait(envelope, 0, true);
    this.pump();
  }

  /** A message an operator put back in the queue (resend): its state file is read at its turn. */
  requeued(envelope: MessageEnvelope): void {
    if (this.stopping || this.pending.has(envelope.id) || this.inFlight.has(envelope.id)) return;
    this.wait(envelope, 0);
    this.pump();
  }

  /** An operator released a held message: its next attempt is now. False when it is not waiting here. */
  release(id: string): boolean {
    const item = this.pending.get(id);
    if (!item) return false;
    item.dueAt = 0;
    this.pump();
    return true;
  }

  /** An operator deletes a queued message: false while it is being delivered (it cannot be taken back). */
  forget(id: string): boolean {
    if (this.inFlight.has(id)) return false;
    this.pending.delete(id);
    return true;
  }

  /** The oldest message waiting or in flight (ids sort by arrival; a retried one is re-added at the end, so all are looked at). */
  get oldestId(): string | undefined {
    let oldest: string | undefined;
    for (const map of [this.pending, this.inFlight]) {
      for (const id of map.keys()) if (oldest === undefined || id < oldest) oldest = id;
    }
    return oldest;
  }

  /** Until when every delivery waits (the upstream throttled, or blocked the mailbox); 0 when none. */
  get heldUntil(): number {
    return this.pausedUntil > Date.now() ? this.pausedUntil : 0;
  }

  private wait(envelope: MessageEnvelope, dueAt: number, fresh = false): void {
    // Every entry has the same fields (no spreads), so V8 gives them all one hidden class.
    this.pending.set(envelope.id, { id: envelope.id, envelope: this.pending.size < ENVELOPES_IN_MEMORY ? envelope : undefined, dueAt, fresh });
  }

  /** Messages waiting or in flight. */
  get depth(): number {
    return this.pending.size + this.inFlight.size;
  }

  /** Resolves when nothing is due now and nothing is in flight (tests, graceful shutdown). */
  whenIdle(): Promise<void> {
    if (this.isIdle()) {
      return Promise.resolve();
    }
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Stops starting deliveries and waits up to `timeoutMs` for those in flight. */
  async stop(timeoutMs: number): Promise<void> {
    this.stopping = true;
    this.disarmTimer();
    clearInterval(this.rescanTimer);
    let timeout: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.allSettled([...this.inFlight.values()]),
      new Promise((resolve) => {
        timeout = setTimeout(resolve, timeoutMs);
      }),
    ]);
    clearTimeout(timeout);
  }

  private isIdle(): boolean {
    if (this.inFlight.size > 0) {
      return false;
    }
    const now = Date.now();
    if (now < this.pausedUntil) {
      return true;
    }
    for (const item of this.pending.values()) {
      if (item.dueAt <= now) {
        return false;
      }
    }
    return true;
  }

  private pump(): void {
    if (this.stopping) {
      return;
    }
    const now = Date.now();
    // A full rate window: nothing can start before it opens, whatever is due. Not scanning the
    // queue then keeps each new message O(1) while a backlog waits for the per-minute limit.
    const rateFull = this.rate !== undefined && this.rate.nextSlotAt(now) > now;
    if (now >= this.pausedUntil && !rateFull) {
      // The map keeps arrival order (ids sort by arrival and new mail is appended), so the first
      // due entries are the oldest: no sort, and the scan stops as soon as the slots are full.
      for (const item of this.pending.values()) {
        if (this.inFlight.size >= this.options.concurrency) {
          break;
        }
        if (item.dueAt <= now) {
          if (this.rate && !this.rate.tryTake(now)) {
            break;
          }
          this.begin(item);
        }
      }
    }
    // With free slots and nothing due, only a timer brings the next retry; otherwise a finishing
    // delivery pumps again.
    if (this.inFlight.size < this.options.concurrency) {
      this.armTimer(now);
    } else {
      this.disarmTimer();
    }
    if (this.idleWaiters.length > 0 && this.isIdle()) {
      for (const resolve of this.idleWaiters.splice(0)) {
        resolve();
      }
    }
  }

  private begin(item: Pending): void {
    const { id } = item;
    this.pending.delete(id);
    const run = this.attempt(item)
      .catch((error: unknown) => {
        // The outcome could not be recorded (spool I/O): keep the message and try again later.
        this.options.logger.error({ messageId: id, err: String(error) }, 'could not record a delivery outcome');
        this.pending.set(id, { ...item, dueAt: Date.now() + (this.options.policy.scheduleMs[0] ?? 60_000), fresh: false });
      })
      .finally(() => {
        this.inFlight.delete(id);
        this.pump();
      });
    this.inFlight.set(id, run);
  }

  private async attempt(item: Pending): Promise<void> {
    let envelope = item.envelope;
    if (!envelope) {
      try {
        envelope = await this.options.spool.readEnvelope(item.id);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
          // Removed from the queue behind the worker's back (an operator): nothing left to deliver.
          this.options.logger.warn({ messageId: item.id }, 'message no longer in the queue, skipped');
          return;
        }
        throw error;
      }
    }
    await this.process(envelope, item.fresh);
  }

  private armTimer(now: number): void {
    if (this.pending.size === 0) {
      this.disarmTimer();
      return;
    }
    const blockedUntil = Math.max(this.pausedUntil, this.rate?.nextSlotAt(now) ?? 0);
    let nextDue = Infinity;
    if (blockedUntil > now) {
      // Paused or rate-limited: wake when that ends and look then (at most perMinute scans a minute).
      nextDue = blockedUntil;
    } else {
      for (const item of this.pending.values()) {
        nextDue = Math.min(nextDue, item.dueAt);
      }
    }
    // While the rate window is full every new message pumps with the same wake-up time: keep the
    // timer. A new one per message, each with a slightly different delay, made Node keep a timer
    // list per distinct delay (thousands with a backlog).
    if (this.timer !== undefined && this.timerDueAt === nextDue) {
      return;
    }
    this.disarmTimer();
    this.timerDueAt = nextDue;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.pump();
    }, Math.max(0, nextDue - Date.now()));
    this.timer.unref();
  }

  private disarmTimer(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** History is for people: a failure to write it is logged and never holds up or repeats a delivery. */
  private async keepHistory(messageId: string, write: () => Promise<void> | undefined): Promise<void> {
    try {
      await write();
    } catch (error) {
      this.options.logger.warn({ messageId, err: String(error) }, 'could not write the delivery history');
    }
  }

  private async process(envelope: MessageEnvelope, fresh: boolean): Promise<void> {
    const { spool, submitter, policy, logger, history } = this.options;
    const stored = fresh ? undefined : await spool.readState(envelope.id);
    const state: DeliveryState = stored ?? { attempts: 0, deliveredRcpts: [], rejectedRcpts: [] };
    const rcptTo = state.pendingRcpts ?? envelope.rcptTo;
    const sendClass = RepeatedFailureGuard.classOf(envelope);
    // Messages tried before keep their own schedule: they are the probes whose success releases the rest.
    const holding = state.attempts === 0 ? this.repeated.holding(sendClass) : undefined;
    if (holding) {
      await this.holdUntried(envelope, state, sendClass, holding);
      return;
    }
    this.heldUntried.get(sendClass)?.delete(envelope.id);
    // Opened before the attempt: an operator's delete (or `smarthost` behind the worker's back)
    // then cannot pull the file from under the submission, and a message already gone is skipped
    // rather than retried for ever.
    const body = await spool.openQueuedBody(envelope);
    if (!body) {
      logger.warn({ messageId: envelope.id }, 'message no longer in the queue, skipped');
      return;
    }
    const startedAt = new Date();
    let outcome: AttemptOutcome;
    try {
      outcome = await deliverMessage({ envelope, rcptTo, openBody: () => body.open(), mailbox: this.options.mailbox, earlierAttempts: state.attempts }, submitter, logger);
    } finally {
      await body.close();
    }
    const settled = settleAttempt({
      messageId: envelope.id,
      progress: {
        attempts: state.attempts,
        delivered: state.deliveredRcpts,
        refused: state.rejectedRcpts.map((r) => ({ rcpt: r.rcpt, reply: r.reply, kind: 'permanent' as const })),
        receivedAt: envelope.receivedAt,
      },
      outcome,
      policy,
      now: new Date(),
      attempt: { route: this.options.route ?? 'upstream', mailbox: this.options.mailbox, startedAt },
    });
    const { decision, progress, event } = settled;
    state.attempts = progress.attempts;
    state.deliveredRcpts = progress.delivered;
    state.rejectedRcpts = progress.refused.map((r) => ({ rcpt: r.rcpt, reply: r.reply }));
    const record = (action: AttemptRecord['action'], reply?: string) => this.emit('attempt', { id: envelope.id, action, attempts: state.attempts, reply, event, size: envelope.size });
    if (this.repeated.record(sendClass, event)) this.releaseHeld(sendClass);
    if (decision.action === 'done' && progress.refused.length === 0) {
      await this.keepHistory(envelope.id, () => history?.archive(envelope, [event], { hadLive: !fresh }));
      await spool.remove(envelope, { hasState: !fresh });
      logAttempt(logger, settled, 'failed area');
      record('delivered');
      return;
    }
    if (decision.action === 'done' || decision.action === 'give-up') {
      // Given up, or delivered to some and refused for others: kept where an operator can see and resend.
      const partial = decision.action === 'done';
      state.pendingRcpts = settled.owed;
      if (!partial) state.lastError = event.reply;
      await this.keepHistory(envelope.id, () => history?.append(event));
      await spool.moveToFailed(envelope, {
        failedAt: event.at,
        reason: partial ? 'some recipients were refused' : decision.reason,
        reply: partial ? progress.refused[0]?.reply : event.reply,
        ...(partial || !event.operatorAction ? {} : { operatorAction: event.operatorAction }),
        state,
      });
      await this.keepHistory(envelope.id, () => history?.moveToFailed(envelope.id));
      logAttempt(logger, settled, 'failed area');
      record('failed', partial ? progress.refused[0]?.reply : event.reply);
      return;
    }
    const dueAt = Date.parse(decision.at);
    state.pendingRcpts = settled.owed;
    state.lastError = event.reply;
    state.nextAttemptAt = decision.at;
    if (event.operatorAction) state.operatorAction = event.operatorAction;
    else delete state.operatorAction;
    // The history lands before the state: a crash between leaves one event the state does not count.
    await this.keepHistory(envelope.id, () => history?.append(event));
    await spool.writeState(envelope.id, state);
    logAttempt(logger, settled, 'failed area');
    // The embedded agent sends as one mailbox, so a blocked mailbox holds every delivery.
    const pauseMs = event.mailboxBlocked ? MAILBOX_BLOCK_MS : event.throttled ? this.options.throttlePauseMs : 0;
    if (pauseMs > 0) {
      this.pausedUntil = Math.max(this.pausedUntil, Date.now() + pauseMs);
      logger.warn(
        { messageId: envelope.id, pauseMs, mailboxBlocked: event.mailboxBlocked === true },
        event.mailboxBlocked ? 'Exchange Online blocked the mailbox, holding all deliveries' : 'upstream is throttling, holding deliveries',
      );
    }
    this.wait(envelope, dueAt);
    record('retry', event.reply);
  }

  /** Keeps a message of a class whose last attempts all failed the same way, without sending it into the upstream. */
  private async holdUntried(envelope: MessageEnvelope, state: DeliveryState, sendClass: string, run: RepeatedFailure): Promise<void> {
    const at = new Date(Date.now() + nextRetryDelay(this.options.policy, 1, 'config')).toISOString();
    state.lastError = run.reply;
    state.nextAttemptAt = at;
    if (run.operatorAction) state.operatorAction = run.operatorAction;
    await this.options.spool.writeState(envelope.id, state);
    let held = this.heldUntried.get(sendClass);
    if (!held) this.heldUntried.set(sendClass, (held = new Set()));
    held.add(envelope.id);
    this.options.logger.warn(
      { messageId: envelope.id, sendAs: sendClass, repeated: run.count, reply: run.reply },
      `held without trying: the last ${run.count} messages as this sender failed the same way; it goes out once one of them is delivered or the operator resends`,
    );
    this.wait(envelope, Date.parse(at));
    // Not an attempt: metrics and the console count attempts from 'attempt' only.
    this.emit('held-untried', { id: envelope.id, reply: run.reply });
  }

  private releaseClass(sendClass: string): void {
    if (this.repeated.release(sendClass)) this.releaseHeld(sendClass);
  }

  /** The held messages of a class become due now; pump() (after the current attempt) starts them. */
  private releaseHeld(sendClass: string): void {
    const held = this.heldUntried.get(sendClass);
    this.heldUntried.delete(sendClass);
    for (const id of held ?? []) {
      const item = this.pending.get(id);
      if (item) item.dueAt = 0;
    }
    this.options.logger.info({ sendAs: sendClass, released: held?.size ?? 0 }, 'a message as this sender went out: releasing the ones held behind it');
  }
}
