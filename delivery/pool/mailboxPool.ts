import { RECIPIENT_BUDGET_WINDOW_MS, RECIPIENT_RATE_WINDOW_MS } from '../exchangeLimits.ts';
import type { DeliveryLogger } from '../logger.ts';
import { RepeatedFailureGuard } from '../repeatedFailureGuard.ts';
import { SendRate } from '../sendRate.ts';
import type { Submitter } from '../smtp/submission.ts';
import type { TokenHealth } from '../token/tokenProvider.ts';
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
}

/** Where the recipient counts of each mailbox outlive a restart (embedded: a file in the spool). */
export interface RecipientBudgetStore {
  load(): Promise<Record<string, RollingBuckets>>;
  save(counts: Record<string, RollingBuckets>): Promise<void>;
}

/** A delivery's hold on a mailbox: a rate slot, a connection and its recipients counted. */
export interface PoolLease {
  readonly member: PoolMember;
  /** Nothing was sent: the slot, the connection and the recipients are given back. */
  cancel(): void;
  /**
   * The attempt ended; recipients the upstream did not take are given back. `answeredAt`: when the
   * upstream answered, from which the rate slot then counts; absent, it counts from the start.
   */
  finish(accepted: number, answeredAt?: number): void;
}

export type PoolChoice = { lease: PoolLease } | { retryAt: number };

export interface MailboxPoolOptions {
  budgetStore?: RecipientBudgetStore;
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
  private saving: Promise<void> | undefined;
  private saveAgain = false;

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
      recipientsPerDay: input.recipientsPerDay,
      tokens: input.tokens,
      recipients: new RollingCount(RECIPIENT_BUDGET_WINDOW_MS),
      guard: new RepeatedFailureGuard(),
      inFlight: 0,
      pausedUntil: 0,
      budgetWarned: false,
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
      const openAt = Math.max(member.pausedUntil, member.rate?.nextSlotAt(now) ?? now);
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

  /** Nothing is started on this mailbox for `ms`. */
  pause(member: PoolMember, ms: number, now = Date.now()): void {
    member.pausedUntil = Math.max(member.pausedUntil, now + ms);
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

  /** Waits for the last recipient counts to be written, then closes every submitter. */
  async close(): Promise<void> {
    while (this.saving) await this.saving;
    await Promise.all(this.members.map((m) => m.submitter.close()));
  }

  private openAt(member: PoolMember, rcpts: number, now: number): number {
    let at = Math.max(member.pausedUntil, member.rate?.nextSlotAt(now) ?? now);
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
    const end = (giveBack: number) => {
      if (!open) return;
      open = false;
      member.inFlight -= 1;
      if (giveBack > 0) member.recipients.remove(giveBack, now);
      if (counted > 0) this.save();
    };
    return {
      member,
      cancel: () => {
        if (open) member.rate?.giveBack(now);
        end(counted);
      },
      finish: (accepted, answeredAt) => {
        // Exchange counts the message when it answers: the slot's minute runs from then (SendRate.settle).
        if (open && answeredAt !== undefined) member.rate?.settle(now, answeredAt);
        end(Math.max(0, counted - accepted));
      },
    };
  }

  /** One write at a time; changes during a write are written right after it. */
  private save(): void {
    const store = this.options.budgetStore;
    if (!store) return;
    if (this.saving) {
      this.saveAgain = true;
      return;
    }
    const now = Date.now();
    const snapshot: Record<string, RollingBuckets> = {};
    for (const member of this.members) if (member.mailbox) snapshot[member.mailbox.toLowerCase()] = member.recipients.snapshot(now);
    this.saving = store
      .save(snapshot)
      .catch((error: unknown) => this.options.logger?.warn({ err: String(error) }, 'could not save the recipient counts'))
      .finally(() => {
        this.saving = undefined;
        if (this.saveAgain) {
          this.saveAgain = false;
          this.save();
        }
      });
  }
}
