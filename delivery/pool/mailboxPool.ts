import { setTimeout as delay } from 'node:timers/promises';
import { RECIPIENT_BUDGET_WINDOW_MS, RECIPIENT_RATE_WINDOW_MS } from '../exchangeLimits.ts';
import type { DeliveryLogger } from '../logger.ts';
import { RepeatedFailureGuard } from '../repeatedFailureGuard.ts';
import { SendRate } from '../sendRate.ts';
import type { Submitter } from '../smtp/submission.ts';
import type { TokenHealth } from '../token/tokenProvider.ts';
import { describeBudgetLimit, type BudgetGrant, type BudgetLimit, type MailboxBudgetStore } from './mailboxBudget.ts';
import { RollingCount, type RollingBuckets } from './rollingCount.ts';

/** What a runtime gives the pool for each mailbox. */
export interface PoolMemberInput {
  /** The address it authenticates as; absent for the outbox or an upstream without a mailbox. */
  mailbox: string | undefined;
  /** Addresses it may send as besides itself. */
  sendAs?: readonly string[];
  submitter: Submitter;
  /** How the message leaves through it, for the history (`smtp host:port`, `outbox`). */
  route: string;
  /** Deliveries at once through this mailbox. */
  connections: number;
  /** Deliveries started per minute at most; absent: no limit. */
  perMinute?: number;
  /** Recipients per rolling 24 hours; absent: not counted. */
  recipientsPerDay?: number;
  /** Its token client, for the alerts' token health; absent without oauth2. */
  tokens?: { health(): TokenHealth };
}

/** One mailbox with its own limits, pauses and repeated-failure guard. */
export interface PoolMember {
  readonly mailbox: string | undefined;
  readonly sendAs: ReadonlySet<string>;
  readonly submitter: Submitter;
  readonly route: string;
  readonly connections: number;
  readonly rate: SendRate | undefined;
  readonly perMinute: number | undefined;
  readonly recipientsPerDay: number | undefined;
  readonly tokens: { health(): TokenHealth } | undefined;
  readonly recipients: RollingCount;
  /** Consecutive identical operator errors per send-as address, on this mailbox only. */
  readonly guard: RepeatedFailureGuard;
  inFlight: number;
  /** Until when nothing is started on it (throttled, or blocked by Exchange Online). */
  pausedUntil: number;
  /** The budget-reached warning was logged for the current window. */
  budgetWarned: boolean;
  /** Until when the budget store refused it (another process used the shared budget), and which limit. */
  refusedUntil: number;
  refusedLimit: BudgetLimit | undefined;
}

/** A delivery's hold on a mailbox: a rate slot, a connection and its recipients counted. */
export interface PoolLease {
  readonly member: PoolMember;
  /** Recipients it counted against the mailbox's budget (none when the mailbox has no recipientsPerDay). */
  readonly counted: number;
  /** What the budget store granted (confirm); absent before, or without a store. */
  grant: BudgetGrant | undefined;
  /** Nothing was sent: the slot, the connection and the recipients are given back (resolves once the store has them; never rejects). */
  cancel(): Promise<void>;
  /**
   * The attempt ended; recipients the upstream did not take are given back (resolves once the store
   * has them; never rejects). `answeredAt`: when the upstream answered, from which the rate slot then
   * counts; absent, it counts from the start.
   */
  finish(accepted: number, answeredAt?: number): Promise<void>;
}

export type PoolChoice = { lease: PoolLease } | { retryAt: number };

/** Why no mailbox this message may use can take it now, and when one can (Infinity: only busy connections). */
export interface PoolWait {
  retryAt: number;
  reason: string;
}

export interface MailboxPoolOptions {
  budgetStore?: MailboxBudgetStore;
  /** Messages an hour to one recipient over the whole pool (Exchange's receiving limit); absent: not limited. */
  perRecipientPerHour?: number;
  logger?: DeliveryLogger;
}

/** Recipients tracked for the receiving limit before idle ones are swept. */
const RECIPIENT_SWEEP_AT = 5_000;

/** Recipients taken under the receiving limit for one attempt (MailboxPool.takeRecipients). */
export interface RecipientReservation {
  openAt: number;
  release(unused: readonly string[]): void;
}

/**
 * The mailboxes mail may leave through, each with its own limits. A message sent as an address
 * some mailboxes list in `sendAs` (or are) goes only through those; any other message through the
 * least loaded of all. One throttled, blocked or exhausted mailbox holds only the mail that must
 * use it: the rest moves to the others.
 */
export class MailboxPool {
  readonly members: readonly PoolMember[];
  private readonly claimed = new Map<string, PoolMember[]>();
  private readonly toRecipient = new Map<string, RollingCount>();
  private turn = 0;
  /** Resolved (and replaced) whenever a lease ends: acquire() waits on it for a busy connection. */
  private leaseEnded = resolvable();

  constructor(
    inputs: readonly PoolMemberInput[],
    private readonly options: MailboxPoolOptions = {},
  ) {
    if (inputs.length === 0) throw new Error('a mailbox pool needs at least one mailbox');
    this.members = inputs.map((input) => ({
      mailbox: input.mailbox,
      sendAs: new Set((input.sendAs ?? []).map((a) => a.toLowerCase())),
      submitter: input.submitter,
      route: input.route,
      connections: input.connections,
      rate: input.perMinute === undefined ? undefined : new SendRate(input.perMinute),
      perMinute: input.perMinute,
      recipientsPerDay: input.recipientsPerDay,
      tokens: input.tokens,
      recipients: new RollingCount(RECIPIENT_BUDGET_WINDOW_MS),
      guard: new RepeatedFailureGuard(),
      inFlight: 0,
      pausedUntil: 0,
      budgetWarned: false,
      refusedUntil: 0,
      refusedLimit: undefined,
    }));
    for (const member of this.members) {
      for (const address of [...member.sendAs, ...(member.mailbox ? [member.mailbox.toLowerCase()] : [])]) {
        const list = this.claimed.get(address) ?? [];
        list.push(member);
        this.claimed.set(address, list);
      }
    }
  }

  /** Reads the recipient counts kept before a restart. */
  async load(): Promise<void> {
    const saved = await this.options.budgetStore?.load().catch((error: unknown) => {
      // The counts only keep Exchange from refusing: start from none rather than not at all.
      this.options.logger?.warn({ err: String(error) }, 'could not read the recipient counts: counting from zero');
      return undefined;
    });
    if (!saved) return;
    for (const [mailbox, buckets] of Object.entries(saved)) {
      // A mailbox no longer in the pool is left out.
      this.members.find((m) => m.mailbox?.toLowerCase() === mailbox.toLowerCase())?.recipients.restore(buckets);
    }
  }

  /** The mailboxes that may send as this address: those that list it (or are it), else all. */
  candidates(sendClass: string): readonly PoolMember[] {
    return this.claimed.get(sendClass) ?? this.members;
  }

  /**
   * Takes the least loaded mailbox that may send this message now, or says when to look again
   * (Infinity: only busy connections stand in the way, and a finishing delivery looks again).
   * `untried` messages avoid a mailbox whose guard holds their sender; when every candidate
   * holds it, one is chosen anyway and the caller holds the message without sending it.
   */
  choose(sendClass: string, rcpts: number, untried: boolean, now = Date.now()): PoolChoice {
    const candidates = this.candidates(sendClass);
    const notHolding = untried ? candidates.filter((m) => !m.guard.holding(sendClass)) : candidates;
    const eligible = notHolding.length > 0 ? notHolding : candidates;
    let best: PoolMember | undefined;
    let bestLoad = Infinity;
    let retryAt = Infinity;
    const start = this.turn++ % eligible.length;
    for (let i = 0; i < eligible.length; i++) {
      const member = eligible[(start + i) % eligible.length] as PoolMember;
      const openAt = this.openAt(member, rcpts, now);
      if (openAt > now) {
        retryAt = Math.min(retryAt, openAt);
        continue;
      }
      if (member.inFlight >= member.connections) continue;
      const load = (member.rate?.used(now) ?? 0) + member.inFlight;
      if (load < bestLoad) {
        best = member;
        bestLoad = load;
      }
    }
    if (!best) return { retryAt };
    return { lease: this.take(best, rcpts, now) };
  }

  /** Earliest time any mailbox can start a delivery (Infinity: all connections busy); now when one can. */
  nextStartAt(now = Date.now()): number {
    let earliest = Infinity;
    for (const member of this.members) {
      const openAt = Math.max(member.pausedUntil, member.refusedUntil, member.rate?.nextSlotAt(now) ?? now);
      if (member.inFlight < member.connections) earliest = Math.min(earliest, Math.max(now, openAt));
    }
    return earliest;
  }

  /** Until when every mailbox waits (all throttled or blocked); 0 when one is not. */
  heldUntil(now = Date.now()): number {
    let until = Infinity;
    for (const member of this.members) until = Math.min(until, member.pausedUntil);
    return until > now ? until : 0;
  }

  /** Nothing is started on this mailbox for `ms`, here and, with a shared budget store, in every process using it. */
  pause(member: PoolMember, ms: number, now = Date.now()): void {
    member.pausedUntil = Math.max(member.pausedUntil, now + ms);
    if (member.mailbox) {
      this.options.budgetStore?.pause?.(member.mailbox.toLowerCase(), member.pausedUntil).catch((error: unknown) =>
        this.options.logger?.warn({ mailbox: member.mailbox, err: String(error) }, 'could not tell the other instances that the mailbox is paused'),
      );
    }
  }

  /**
   * Takes one message for each recipient under the receiving limit, counted now rather than after
   * the attempt: deliveries running side by side then see each other's, and three at once to one
   * address cannot all pass a limit of two. `openAt` > now: a recipient is full, nothing taken.
   * `release` gives back the recipients the attempt did not deliver to.
   */
  takeRecipients(rcpts: readonly string[], now = Date.now()): RecipientReservation {
    const limit = this.options.perRecipientPerHour;
    if (limit === undefined) return { openAt: now, release: () => undefined };
    const keys = [...new Set(rcpts.map((r) => r.toLowerCase()))];
    let openAt = now;
    for (const key of keys) {
      const count = this.toRecipient.get(key);
      if (count) openAt = Math.max(openAt, count.roomAt(1, limit, now));
    }
    if (openAt > now) return { openAt, release: () => undefined };
    for (const key of keys) {
      let count = this.toRecipient.get(key);
      if (!count) this.toRecipient.set(key, (count = new RollingCount(RECIPIENT_RATE_WINDOW_MS)));
      count.add(1, now);
    }
    if (this.toRecipient.size > RECIPIENT_SWEEP_AT) {
      for (const [key, count] of this.toRecipient) if (count.total(now) === 0) this.toRecipient.delete(key);
    }
    let released = false;
    return {
      openAt,
      release: (unused) => {
        if (released) return;
        released = true;
        for (const key of new Set(unused.map((r) => r.toLowerCase()))) if (keys.includes(key)) this.toRecipient.get(key)?.remove(1, now);
      },
    };
  }

  /** Ends any repeated-failure run of this sender on every mailbox; true when one was holding mail. */
  releaseClass(sendClass: string): boolean {
    let released = false;
    for (const member of this.members) if (member.guard.release(sendClass)) released = true;
    return released;
  }

  /**
   * Asks the budget store for a chosen lease's share (the pool's own counts let it go; a store
   * shared with other processes may not). Refused: the lease is cancelled, the mailbox is left
   * alone until the store's time, and the wait is returned; granted: undefined.
   */
  async confirm(lease: PoolLease, now = Date.now()): Promise<PoolWait | undefined> {
    const store = this.options.budgetStore;
    const { member } = lease;
    const recipients = lease.counted;
    if (!store || !member.mailbox || (recipients === 0 && member.perMinute === undefined)) return undefined;
    const answer = await store
      .take({
        mailbox: member.mailbox.toLowerCase(),
        recipients,
        ...(member.recipientsPerDay === undefined ? {} : { recipientsPerDay: member.recipientsPerDay }),
        ...(member.perMinute === undefined ? {} : { perMinute: member.perMinute }),
        now,
        counts: () => this.snapshot(),
      })
      .catch(async (error: unknown) => {
        // The store could not say (DynamoDB unreachable): nothing is sent on this lease.
        await lease.cancel();
        throw error;
      });
    if ('granted' in answer) {
      lease.grant = answer.granted;
      return undefined;
    }
    const { limit, retryAt } = answer.refused;
    await lease.cancel();
    // Never in the past: choose() must not pick it again at once.
    const until = Math.max(retryAt, now + 1);
    if (limit === 'paused') {
      // Another instance was throttled on it: this one holds it as if it had been.
      member.pausedUntil = Math.max(member.pausedUntil, until);
      return { retryAt: member.pausedUntil, reason: describeBudgetLimit(member.mailbox, limit, undefined, member.pausedUntil) };
    }
    if (until >= member.refusedUntil) {
      member.refusedUntil = until;
      member.refusedLimit = limit;
    }
    const reason = describeBudgetLimit(member.mailbox, limit, limit === 'perMinute' ? member.perMinute : member.recipientsPerDay, member.refusedUntil);
    if (limit === 'recipientsPerDay') {
      this.options.logger?.warn(
        { mailbox: member.mailbox, recipientsPerDay: member.recipientsPerDay, until: new Date(member.refusedUntil).toISOString() },
        'the mailbox reached its recipients per 24 hours, counted with the other instances: its mail moves to another permitted mailbox or waits',
      );
    }
    return { retryAt: member.refusedUntil, reason };
  }

  /**
   * choose() and confirm() for a runtime that does not schedule (the cloud): waits up to
   * `maxWaitMs` for a mailbox this message may use to open (a per-minute slot), and up to
   * `busyWaitMs` while only busy connections stand in the way, taking
   * the next permitted one when the budget store refuses one, and returns the wait otherwise.
   */
  async acquire(sendClass: string, rcpts: number, maxWaitMs: number, busyWaitMs = maxWaitMs): Promise<{ lease: PoolLease } | PoolWait> {
    const deadline = Date.now() + maxWaitMs;
    const busyDeadline = Date.now() + busyWaitMs;
    for (;;) {
      const now = Date.now();
      const choice = this.choose(sendClass, rcpts, false, now);
      if ('lease' in choice) {
        if (!(await this.confirm(choice.lease))) return choice;
        continue;
      }
      // Infinity: only busy connections, so a finishing delivery may free one before the deadline.
      const busyOnly = choice.retryAt === Infinity;
      if ((busyOnly && now >= busyDeadline) || (!busyOnly && choice.retryAt > deadline)) return { retryAt: choice.retryAt, reason: this.waitReason(sendClass, rcpts, now) };
      const timer = new AbortController();
      await Promise.race([this.leaseEnded.promise, delay(Math.max(1, Math.min(choice.retryAt, busyOnly ? busyDeadline : deadline) - now), undefined, { signal: timer.signal }).catch(() => undefined)]);
      timer.abort();
    }
  }

  /** Why every mailbox this message may use waits now, naming the one that opens first and its limit. */
  waitReason(sendClass: string, rcpts: number, now = Date.now()): string {
    let first: { at: number; text: string } | undefined;
    for (const member of this.candidates(sendClass)) {
      const who = member.mailbox ?? 'the mailbox';
      const reasons: { at: number; text: string }[] = [
        { at: member.pausedUntil, text: `${who} is held after Exchange Online throttled or blocked it until ${new Date(member.pausedUntil).toISOString()}` },
        { at: member.refusedUntil, text: describeBudgetLimit(member.mailbox, member.refusedLimit ?? 'recipientsPerDay', member.refusedLimit === 'perMinute' ? member.perMinute : member.recipientsPerDay, member.refusedUntil) },
      ];
      const rateAt = member.rate?.nextSlotAt(now) ?? now;
      reasons.push({ at: rateAt, text: describeBudgetLimit(member.mailbox, 'perMinute', member.perMinute, rateAt) });
      if (member.recipientsPerDay !== undefined) {
        const roomAt = member.recipients.roomAt(rcpts, member.recipientsPerDay, now);
        reasons.push({ at: roomAt, text: describeBudgetLimit(member.mailbox, 'recipientsPerDay', member.recipientsPerDay, roomAt) });
      }
      const closed = reasons.filter((r) => r.at > now).sort((a, b) => b.at - a.at)[0] ?? (member.inFlight >= member.connections ? { at: Infinity, text: `${who} has all its ${member.connections} connections busy` } : undefined);
      if (closed && (!first || closed.at < first.at)) first = closed;
    }
    return first?.text ?? 'no mailbox may send it now';
  }

  /** Waits for the budget store's last writes, then closes every submitter. */
  async close(): Promise<void> {
    await this.options.budgetStore?.flush();
    await Promise.all(this.members.map((m) => m.submitter.close()));
  }

  /** This process's recipient counts, by lowercased mailbox. */
  private snapshot(now = Date.now()): Record<string, RollingBuckets> {
    const counts: Record<string, RollingBuckets> = {};
    for (const member of this.members) if (member.mailbox) counts[member.mailbox.toLowerCase()] = member.recipients.snapshot(now);
    return counts;
  }

  private openAt(member: PoolMember, rcpts: number, now: number): number {
    let at = Math.max(member.pausedUntil, member.refusedUntil, member.rate?.nextSlotAt(now) ?? now);
    if (member.recipientsPerDay !== undefined) {
      const roomAt = member.recipients.roomAt(rcpts, member.recipientsPerDay, now);
      if (roomAt > now && !member.budgetWarned) {
        member.budgetWarned = true;
        this.options.logger?.warn(
          { mailbox: member.mailbox, recipientsPerDay: member.recipientsPerDay, until: new Date(roomAt).toISOString() },
          'the mailbox reached its recipients per 24 hours: its mail moves to another permitted mailbox or waits',
        );
      } else if (roomAt <= now) {
        member.budgetWarned = false;
      }
      at = Math.max(at, roomAt);
    }
    return at;
  }

  private take(member: PoolMember, rcpts: number, now: number): PoolLease {
    member.rate?.tryTake(now);
    member.inFlight += 1;
    const counted = member.recipientsPerDay === undefined ? 0 : rcpts;
    member.recipients.add(counted, now);
    let open = true;
    const end = async (giveBack: number, messageToo: boolean): Promise<void> => {
      if (!open) return;
      open = false;
      member.inFlight -= 1;
      if (giveBack > 0) member.recipients.remove(giveBack, now);
      const ended = this.leaseEnded;
      this.leaseEnded = resolvable();
      ended.resolve();
      const grant = lease.grant;
      const store = this.options.budgetStore;
      if (!grant || !store || (giveBack === 0 && !messageToo)) return;
      await store
        .giveBack(grant, { recipients: Math.min(giveBack, grant.recipients), message: messageToo && grant.message }, () => this.snapshot())
        .catch((error: unknown) => this.options.logger?.warn({ mailbox: member.mailbox, err: String(error) }, 'could not give recipients back to the mailbox budget'));
    };
    const lease: PoolLease = {
      member,
      counted,
      grant: undefined,
      cancel: () => {
        if (open) member.rate?.giveBack(now);
        return end(counted, true);
      },
      finish: (accepted, answeredAt) => {
        // Exchange counts the message when it answers: the slot's minute runs from then (SendRate.settle).
        if (open && answeredAt !== undefined) member.rate?.settle(now, answeredAt);
        return end(Math.max(0, counted - accepted), false);
      },
    };
    return lease;
  }
}

/** A promise with its resolve function (Promise.withResolvers, which the TypeScript lib here does not know). */
function resolvable(): { promise: Promise<void>; resolve: () => void } {
  let resolve: () => void = () => undefined;
  const promise = new Promise<void>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}
