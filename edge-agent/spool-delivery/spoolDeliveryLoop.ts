import { EventEmitter } from 'node:events';
import type { MessageEnvelope } from '../../contract/messageEnvelope.ts';
import { deliverMessage, type AttemptOutcome } from '../../delivery/deliverMessage.ts';
import { MAILBOX_BLOCK_MS } from '../../delivery/classifyReply.ts';
import type { DeliveryLogger } from '../../delivery/logger.ts';
import type { AttemptEvent } from '../../delivery/history/deliveryEvent.ts';
import { logAttempt } from '../../delivery/history/logAttempt.ts';
import { MailboxPool, type PoolLease } from '../../delivery/pool/mailboxPool.ts';
import { RepeatedFailureGuard, type RepeatedFailure } from '../../delivery/repeatedFailureGuard.ts';
import { nextRetryDelay, type RetryPolicy } from '../../delivery/retryPolicy.ts';
import { settleAttempt } from '../../delivery/settle/settleAttempt.ts';
import type { Submitter } from '../../delivery/smtp/submission.ts';
import type { DeliveryState, Spool } from '../spool/spool.ts';
import type { SpoolHistory } from '../spool/spoolHistory.ts';

interface SingleUpstreamOptions {
  submitter: Submitter;
  /** Messages in flight at once; matches the upstream's connection limit. */
  concurrency: number;
  /** Deliveries started per minute at most (the upstream's rate limit); absent: no limit. */
  perMinute?: number;
  /** The mailbox the upstream authenticates as, for operator hints. */
  mailbox?: string;
}

export type SpoolDeliveryLoopOptions = SpoolDeliveryLoopBase & (SingleUpstreamOptions | { pool: MailboxPool });

interface SpoolDeliveryLoopBase {
  spool: Spool;
  policy: RetryPolicy;
  logger: DeliveryLogger;
  /** How long to hold a mailbox's deliveries after the upstream throttles it (432 4.3.2). */
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
  /** The address it goes out as (RepeatedFailureGuard.classOf): which mailboxes may send it. */
  sendClass: string;
  /** Recipients it is owed to at most, for the mailboxes' recipient budgets. */
  rcpts: number;
  /** No attempt yet: held untried on a mailbox whose guard holds its sender. */
  untried: boolean;
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
  /** The fix, when the failure it repeats is one the operator must make. */
  operatorAction?: string;
}

export class SpoolDeliveryLoop extends EventEmitter<{ attempt: [AttemptRecord]; 'held-untried': [HeldUntriedRecord] }> {
  private readonly pending = new Map<string, Pending>();
  private readonly inFlight = new Map<string, Promise<void>>();
  private timer: NodeJS.Timeout | undefined;
  private timerDueAt = 0;
  private rescanTimer: NodeJS.Timeout | undefined;
  private readonly pool: MailboxPool;
  private stopping = false;
  private idleWaiters: (() => void)[] = [];
  /** Per class (RepeatedFailureGuard.classOf): messages held untried, made due at once on release. */
  private readonly heldUntried = new Map<string, Set<string>>();
  /** Due messages the last pump could not start because every mailbox they may use was unavailable. */
  private readonly waitingForMailbox = new Set<string>();

  constructor(private readonly options: SpoolDeliveryLoopOptions) {
    super();
    this.pool =
      'pool' in options
        ? options.pool
        : new MailboxPool([{ mailbox: options.mailbox, submitter: options.submitter, route: options.route ?? 'upstream', connections: options.concurrency, ...(options.perMinute === undefined ? {} : { perMinute: options.perMinute }) }]);
  }

  /** The mailboxes this loop delivers through. */
  get mailboxPool(): MailboxPool {
    return this.pool;
  }

  /** Schedules what the spool held at start, honouring each message's recorded next attempt. */
  async start(queued: MessageEnvelope[]): Promise<void> {
    await this.pool.load();
    for (const envelope of queued) {
      const state = await this.options.spool.readState(envelope.id);
      this.wait(envelope, state?.nextAttemptAt ? Date.parse(state.nextAttemptAt) : 0, { untried: !state || state.attempts === 0, rcpts: state?.pendingRcpts?.length });
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
        this.wait(envelope, state?.nextAttemptAt ? Date.parse(state.nextAttemptAt) : 0, { untried: !state || state.attempts === 0, rcpts: state?.pendingRcpts?.length });
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
    this.wait(envelope, 0, { fresh: true, untried: true });
    this.pump();
  }

  /** A message an operator put back in the queue (resend): its state file is read at its turn. */
  requeued(envelope: MessageEnvelope): void {
    if (this.stopping || this.pending.has(envelope.id) || this.inFlight.has(envelope.id)) return;
    // Put back by the operator: tried as a probe even where its sender is held.
    this.wait(envelope, 0, { untried: false });
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

  /** Until when every delivery waits (every mailbox throttled or blocked); 0 when one is not. */
  get heldUntil(): number {
    return this.pool.heldUntil();
  }

  private wait(envelope: MessageEnvelope, dueAt: number, how: { fresh?: boolean; untried?: boolean; rcpts?: number | undefined } = {}): void {
    // Every entry has the same fields (no spreads), so V8 gives them all one hidden class.
    this.pending.set(envelope.id, {
      id: envelope.id,
      envelope: this.pending.size < ENVELOPES_IN_MEMORY ? envelope : undefined,
      dueAt,
      fresh: how.fresh === true,
      sendClass: RepeatedFailureGuard.classOf(envelope),
      rcpts: how.rcpts ?? envelope.rcptTo.length,
      untried: how.untried === true,
    });
  }

  /** Messages waiting or in flight. */
  get depth(): number {
    return this.pending.size + this.inFlight.size;
  }

  /** Messages waiting after at least one attempt (the console's "waits for a retry"). */
  get waitingForRetry(): number {
    let count = 0;
    for (const item of this.pending.values()) if (!item.untried) count++;
    return count;
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
    if (this.pool.heldUntil(now) > now) {
      return true;
    }
    for (const item of this.pending.values()) {
      // Due, but every mailbox it may use is paused or out of budget: it waits like a future retry.
      if (item.dueAt <= now && !this.waitingForMailbox.has(item.id)) {
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
    this.waitingForMailbox.clear();
    // When to look again: the next retry that falls due, or when a mailbox a due message may use
    // opens. A finishing delivery pumps too, so busy connections need no timer.
    let wake = Infinity;
    const nextStart = this.pool.nextStartAt(now);
    if (nextStart > now) {
      // No mailbox can start anything: not scanning the queue keeps each new message O(1) while a
      // backlog waits for the per-minute limit.
      wake = nextStart;
    } else {
      // The map keeps arrival order (ids sort by arrival and new mail is appended), so the first
      // due entries are the oldest: no sort, and the scan stops once no mailbox can start more.
      for (const item of this.pending.values()) {
        if (item.dueAt > now) {
          wake = Math.min(wake, item.dueAt);
          continue;
        }
        const choice = this.pool.choose(item.sendClass, item.rcpts, item.untried, now);
        if ('retryAt' in choice) {
          // Its mailboxes are paused, rate-limited, out of budget or busy; others may still go.
          this.waitingForMailbox.add(item.id);
          wake = Math.min(wake, choice.retryAt);
          continue;
        }
        this.begin(item, choice.lease);
        const next = this.pool.nextStartAt(now);
        if (next > now) {
          wake = Math.min(wake, next);
          break;
        }
      }
    }
    this.armTimer(wake);
    if (this.idleWaiters.length > 0 && this.isIdle()) {
      for (const resolve of this.idleWaiters.splice(0)) {
        resolve();
      }
    }
  }

  private begin(item: Pending, lease: PoolLease): void {
    const { id } = item;
    this.pending.delete(id);
    const run = this.attempt(item, lease)
      .catch((error: unknown) => {
        void lease.cancel();
        // The outcome could not be recorded (spool I/O): keep the message and try again later.
        this.options.logger.error({ messageId: id, err: String(error) }, 'could not record a delivery outcome');
        this.pending.set(id, { ...item, dueAt: Date.now() + (this.options.policy.scheduleMs[0] ?? 60_000), fresh: false });
        this.waitingForMailbox.delete(id);
      })
      .finally(() => {
        this.inFlight.delete(id);
        this.pump();
      });
    this.inFlight.set(id, run);
  }

  private async attempt(item: Pending, lease: PoolLease): Promise<void> {
    let envelope = item.envelope;
    if (!envelope) {
      try {
        envelope = await this.options.spool.readEnvelope(item.id);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
          // Removed from the queue behind the worker's back (an operator): nothing left to deliver.
          this.options.logger.warn({ messageId: item.id }, 'message no longer in the queue, skipped');
          void lease.cancel();
          return;
        }
        throw error;
      }
    }
    await this.process(envelope, item.fresh, lease);
  }

  private armTimer(nextDue: number): void {
    if (this.pending.size === 0 || nextDue === Infinity) {
      this.disarmTimer();
      return;
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

  private async process(envelope: MessageEnvelope, fresh: boolean, lease: PoolLease): Promise<void> {
    const { spool, policy, logger, history } = this.options;
    const { member } = lease;
    const stored = fresh ? undefined : await spool.readState(envelope.id);
    const state: DeliveryState = stored ?? { attempts: 0, deliveredRcpts: [], rejectedRcpts: [] };
    const rcptTo = state.pendingRcpts ?? envelope.rcptTo;
    const sendClass = RepeatedFailureGuard.classOf(envelope);
    // Messages tried before keep their own schedule: they are the probes whose success releases the rest.
    const holding = state.attempts === 0 ? member.guard.holding(sendClass) : undefined;
    if (holding) {
      void lease.cancel();
      await this.holdUntried(envelope, state, sendClass, holding);
      return;
    }
    // The budget store's share (the spool file's is always granted: this process counts alone).
    const refused = await this.pool.confirm(lease);
    if (refused) {
      this.wait(envelope, refused.retryAt, { untried: state.attempts === 0, rcpts: rcptTo.length });
      return;
    }
    // Exchange's receiving limit: an alert storm to one address waits its turn instead of bouncing.
    const recipients = this.pool.takeRecipients(rcptTo);
    if (recipients.openAt > Date.now()) {
      void lease.cancel();
      logger.debug({ messageId: envelope.id, until: new Date(recipients.openAt).toISOString() }, 'a recipient got its messages per hour: waiting');
      this.wait(envelope, recipients.openAt, { untried: state.attempts === 0, rcpts: rcptTo.length });
      return;
    }
    this.heldUntried.get(sendClass)?.delete(envelope.id);
    // Opened before the attempt: an operator's delete (or `smarthost` behind the worker's back)
    // then cannot pull the file from under the submission, and a message already gone is skipped
    // rather than retried for ever.
    const body = await spool.openQueuedBody(envelope).catch((error: unknown) => {
      recipients.release(rcptTo);
      throw error;
    });
    if (!body) {
      void lease.cancel();
      recipients.release(rcptTo);
      logger.warn({ messageId: envelope.id }, 'message no longer in the queue, skipped');
      return;
    }
    const startedAt = new Date();
    let accepted: readonly string[] = [];
    let outcome: AttemptOutcome;
    try {
      outcome = await deliverMessage({ envelope, rcptTo, openBody: () => body.open(), mailbox: member.mailbox, earlierAttempts: state.attempts }, member.submitter, logger);
      accepted = outcome.accepted;
    } finally {
      // Released before the outcome is recorded; recipients not taken go back to the budget and
      // the receiving limit.
      void lease.finish(accepted.length, Date.now());
      recipients.release(rcptTo.filter((rcpt) => !accepted.includes(rcpt)));
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
      attempt: { route: member.route, mailbox: member.mailbox, startedAt },
    });
    const { decision, progress, event } = settled;
    state.attempts = progress.attempts;
    state.deliveredRcpts = progress.delivered;
    state.rejectedRcpts = progress.refused.map((r) => ({ rcpt: r.rcpt, reply: r.reply }));
    const record = (action: AttemptRecord['action'], reply?: string) => this.emit('attempt', { id: envelope.id, action, attempts: state.attempts, reply, event, size: envelope.size });
    if (member.guard.record(sendClass, event)) this.releaseHeld(sendClass);
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
    // Only this mailbox waits: mail another mailbox may send keeps going through it.
    const pauseMs = event.mailboxBlocked ? MAILBOX_BLOCK_MS : event.throttled ? this.options.throttlePauseMs : 0;
    if (pauseMs > 0) {
      this.pool.pause(member, pauseMs);
      logger.warn(
        { messageId: envelope.id, mailbox: member.mailbox, pauseMs, mailboxBlocked: event.mailboxBlocked === true },
        event.mailboxBlocked ? 'Exchange Online blocked the mailbox, holding its deliveries' : 'upstream is throttling the mailbox, holding its deliveries',
      );
    }
    this.wait(envelope, dueAt, { untried: false, rcpts: settled.owed.length });
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
    this.wait(envelope, Date.parse(at), { untried: true });
    // Not an attempt: metrics and the console count attempts from 'attempt' only.
    this.emit('held-untried', { id: envelope.id, reply: run.reply, ...(run.operatorAction ? { operatorAction: run.operatorAction } : {}) });
  }

  private releaseClass(sendClass: string): void {
    if (this.pool.releaseClass(sendClass)) this.releaseHeld(sendClass);
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
