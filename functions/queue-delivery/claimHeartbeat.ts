import { HEARTBEATS_PER_WINDOW } from '../../contract/cloudResources.ts';
import type { DeliveryLogger } from '../../delivery/logger.ts';
import { LeaseLostError } from './deliveryLedger.ts';

/** How a claim is held while its record is delivered. */
export interface ClaimWindow {
  /** How far each beat moves the ledger lease's end from now. */
  leaseMs: number;
  /** How long each beat hides the message again (whole seconds, as SQS counts). */
  visibilityMs: number;
  /** Epoch ms no beat reaches beyond (the Lambda: its invocation's deadline plus CLAIM_MARGIN_MS). */
  deadline?: number;
}

export interface ClaimHolder {
  /** ChangeMessageVisibility of the record's receipt. */
  extendVisibility(seconds: number): Promise<void>;
  /** The ledger lease, conditional on this claim's owner; throws LeaseLostError when it is gone. */
  extendLease(until: number): Promise<void>;
}

/** Milliseconds between two beats: a fraction of the shorter window. */
export function heartbeatIntervalMs(window: Pick<ClaimWindow, 'leaseMs' | 'visibilityMs'>): number {
  return Math.max(100, Math.floor(Math.min(window.leaseMs, window.visibilityMs) / HEARTBEATS_PER_WINDOW));
}

/**
 * Holds a record's claim while it is delivered (bbc/sqs-consumer's heartbeat, plus the ledger
 * lease): every heartbeatIntervalMs it hides the message again for the visibility window and
 * moves the lease's end, so a slow upstream or a large body on a slow link never lets another
 * poller or invocation receive and send the message a second time. A lease that another claim
 * took over ends the heartbeat with `lost` set: the holder must then not settle the attempt.
 * A beat that fails otherwise (SQS or DynamoDB briefly unreachable) is logged; the next one tries again.
 */
export class ClaimHeartbeat {
  private timer: NodeJS.Timeout | undefined;
  private beating: Promise<void> | undefined;
  private lostLease = false;

  constructor(
    private readonly window: ClaimWindow,
    private readonly holder: ClaimHolder,
    private readonly logger: DeliveryLogger,
    private readonly messageId: string,
  ) {}

  /** True once the ledger said another claim holds the message. */
  get lost(): boolean {
    return this.lostLease;
  }

  start(): this {
    this.timer = setInterval(() => {
      this.beating ??= this.beat().finally(() => {
        this.beating = undefined;
      });
    }, heartbeatIntervalMs(this.window));
    return this;
  }

  /** Stops beating; resolves once a beat under way has ended, so none lands after the settle step. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.beating;
  }

  private async beat(): Promise<void> {
    const now = Date.now();
    const room = this.window.deadline === undefined ? Number.POSITIVE_INFINITY : this.window.deadline - now;
    if (room <= 0) return;
    const visibilitySeconds = Math.max(1, Math.ceil(Math.min(this.window.visibilityMs, room) / 1000));
    const leaseUntil = now + Math.min(this.window.leaseMs, room);
    const [visibility, lease] = await Promise.allSettled([this.holder.extendVisibility(visibilitySeconds), this.holder.extendLease(leaseUntil)]);
    if (lease.status === 'rejected' && lease.reason instanceof LeaseLostError) {
      this.lostLease = true;
      clearInterval(this.timer);
      this.logger.warn({ messageId: this.messageId }, 'another worker holds the claim on this message now; this attempt will not settle it');
      return;
    }
    for (const [what, result] of [['visibility', visibility], ['lease', lease]] as const) {
      if (result.status === 'rejected') {
        const error = result.reason as Error;
        this.logger.warn({ messageId: this.messageId, err: error.name, reason: error.message?.slice(0, 200) }, `could not extend the message's ${what}, trying again at the next beat`);
      }
    }
  }
}
