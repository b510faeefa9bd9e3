import { statfs } from 'node:fs/promises';
import type { TokenHealth } from '../../delivery/token/tokenProvider.ts';
import { arrivalOf } from '../spool/messageId.ts';
import type { Spool } from '../spool/spool.ts';
import type { AttemptRecord, HeldUntriedRecord } from '../spool-delivery/spoolDeliveryLoop.ts';
import { isSmtpReply } from '../status/relayActivity.ts';
import type { AlertSnapshot } from './alertConditions.ts';
import type { AlertState } from './alertStateFile.ts';

/** What AlertSignals needs of the spool delivery loop. */
export interface ObservedLoop {
  on(event: 'attempt', listener: (record: AttemptRecord) => void): unknown;
  on(event: 'held-untried', listener: (record: HeldUntriedRecord) => void): unknown;
  off(event: 'attempt', listener: (record: AttemptRecord) => void): unknown;
  off(event: 'held-untried', listener: (record: HeldUntriedRecord) => void): unknown;
  readonly oldestId: string | undefined;
}

export interface AlertSignalsOptions {
  spool: Pick<Spool, 'readState' | 'listQueued' | 'bytesQueued'>;
  spoolDir: string;
  /** spool.maxBytes: the fill level is measured against it; absent, against the disk. */
  maxBytes?: number;
  tokens?: { health(): TokenHealth };
  certificateNotAfter?: number;
  now: () => number;
  /** Percent of the disk under `dir` in use (tests give their own). */
  diskUsedPercent?: (dir: string) => Promise<number>;
}

async function statfsUsedPercent(dir: string): Promise<number> {
  const { blocks, bavail } = await statfs(dir);
  return blocks > 0 ? ((blocks - bavail) / blocks) * 100 : 0;
}

/** `untried`: kept back by the repeated-failure guard, which may name no fix. */
type HeldDetail = { reply?: string; fix?: string; untried?: boolean };

/**
 * Turns what the agent already knows into an AlertSnapshot: the delivery loop's events (held
 * messages, failure streaks, the upstream's reachability), the spool's counts, the token client's
 * health. Streaks come back from the alert state at start, so a restart does not forget them.
 */
export class AlertSignals {
  private readonly held = new Map<string, HeldDetail>();
  private streaks: AlertState['streaks'] = { failedInARow: 0 };
  private loop: ObservedLoop | undefined;

  constructor(private readonly options: AlertSignalsOptions) {}

  private readonly onAttempt = (record: AttemptRecord): void => {
    const { event } = record;
    if (event.decision.action === 'hold') this.held.set(record.id, { reply: event.reply, fix: event.operatorAction });
    else this.held.delete(record.id);
    const delivered = event.accepted.length > 0;
    if (delivered) this.streaks = { ...this.streaks, failedInARow: 0, lastFailure: undefined };
    else this.streaks = { ...this.streaks, failedInARow: this.streaks.failedInARow + 1, lastFailure: event.reply };
    const reached = delivered || isSmtpReply(event.reply) || event.route === 'outbox';
    if (reached) this.streaks = { ...this.streaks, unreachableSince: undefined, unreachableError: undefined };
    else this.streaks = { ...this.streaks, unreachableSince: this.streaks.unreachableSince ?? this.options.now(), unreachableError: event.reply };
  };

  private readonly onHeldUntried = (record: HeldUntriedRecord): void => {
    this.held.set(record.id, { reply: record.reply, untried: true });
  };

  observe(loop: ObservedLoop): void {
    this.loop = loop;
    loop.on('attempt', this.onAttempt);
    loop.on('held-untried', this.onHeldUntried);
  }

  unobserve(): void {
    this.loop?.off('attempt', this.onAttempt);
    this.loop?.off('held-untried', this.onHeldUntried);
  }

  /** The held messages in the spool at start (their state names the fix). */
  async seedHeld(): Promise<void> {
    for (const { envelope, state } of await this.options.spool.listQueued()) {
      if (state?.operatorAction) this.held.set(envelope.id, { reply: state.lastError, fix: state.operatorAction });
    }
  }

  restoreStreaks(streaks: AlertState['streaks']): void {
    this.streaks = { ...streaks };
  }

  get currentStreaks(): AlertState['streaks'] {
    return { ...this.streaks };
  }

  async snapshot(): Promise<AlertSnapshot> {
    await this.dropReleasedHeld();
    const first = this.held.values().next().value as HeldDetail | undefined;
    const oldestId = this.loop?.oldestId;
    const oldestQueuedAt = oldestId === undefined ? undefined : arrivalOf(oldestId)?.getTime();
    return {
      held: { count: this.held.size, ...(first?.reply ? { reply: first.reply } : {}), ...(first?.fix ? { fix: first.fix } : {}) },
      ...(oldestQueuedAt !== undefined ? { oldestQueuedAt } : {}),
      failedInARow: this.streaks.failedInARow,
      ...(this.streaks.lastFailure ? { lastFailure: this.streaks.lastFailure } : {}),
      ...(this.streaks.unreachableSince !== undefined ? { unreachableSince: this.streaks.unreachableSince, unreachableError: this.streaks.unreachableError } : {}),
      ...(this.options.tokens ? { token: this.options.tokens.health() } : {}),
      ...(this.options.certificateNotAfter !== undefined ? { certificateNotAfter: this.options.certificateNotAfter } : {}),
      spoolFill: await this.spoolFill(),
    };
  }

  /** An operator deleted or resent a held message (console, CLI) without an attempt event: its state says so. */
  private async dropReleasedHeld(): Promise<void> {
    for (const [id, detail] of [...this.held.entries()]) {
      const state = await this.options.spool.readState(id).catch(() => undefined);
      if (!state || (!state.operatorAction && !detail.untried)) this.held.delete(id);
    }
  }

  private async spoolFill(): Promise<AlertSnapshot['spoolFill']> {
    if (this.options.maxBytes !== undefined) return { percent: (this.options.spool.bytesQueued / this.options.maxBytes) * 100, of: 'spool.maxBytes' };
    const percent = await (this.options.diskUsedPercent ?? statfsUsedPercent)(this.options.spoolDir).catch(() => undefined);
    return percent === undefined ? undefined : { percent, of: 'disk' };
  }
}
