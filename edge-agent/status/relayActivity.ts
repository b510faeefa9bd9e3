import type { AttemptEvent } from '../../delivery/history/deliveryEvent.ts';
import type { IntakeEvents } from '../intake/smtpIntake.ts';
import type { AttemptRecord, HeldUntriedRecord } from '../spool-delivery/spoolDeliveryLoop.ts';
import type { EventEmitter } from 'node:events';

/** The last attempt that did not deliver, for the overview's "not working because …". */
export interface LastProblem {
  at: number;
  messageId: string;
  reply?: string;
  reason?: string;
  operatorAction?: string;
  /** The upstream answered (an SMTP reply), as opposed to a connection or TLS failure. */
  reachedUpstream: boolean;
}

/** An SMTP reply starts with its code; a connection failure carries the client's error text instead. */
export function isSmtpReply(text: string | undefined): boolean {
  return text !== undefined && /^[2-5]\d\d[ -]/.test(text);
}

/**
 * What the relay has been doing since start, kept from the intake's and the delivery loop's
 * events (never from disk): the readiness check, the overview and the metrics' gauges read it.
 */
export class RelayActivity {
  readonly startedAt = Date.now();
  lastAcceptedAt: number | undefined;
  lastAttemptAt: number | undefined;
  /** Last attempt that got an SMTP reply from the upstream (any code). */
  lastReachedAt: number | undefined;
  /** Last attempt that delivered to at least one recipient. */
  lastDeliveredAt: number | undefined;
  lastProblem: LastProblem | undefined;
  /** Queued messages waiting for the operator (the last attempt was held), with the fix. */
  readonly held = new Map<string, { reason?: string; operatorAction?: string; reply?: string }>();

  observeIntake(intake: EventEmitter<IntakeEvents>): void {
    intake.on('accepted', () => {
      this.lastAcceptedAt = Date.now();
    });
  }

  observeLoop(loop: { on(event: 'attempt', listener: (record: AttemptRecord) => void): unknown; on(event: 'held-untried', listener: (record: HeldUntriedRecord) => void): unknown }): void {
    loop.on('attempt', (record) => this.attempted(record.event));
    // Kept back without an attempt after its sender's last ones failed the same way: held too
    // when that failure needs the operator (its state names the fix, as an attempt's would).
    loop.on('held-untried', (record) => {
      if (record.operatorAction) this.held.set(record.id, { operatorAction: record.operatorAction, reply: record.reply });
    });
  }

  /** Seeds the held messages found in the spool at start (their state names the fix). */
  seedHeld(id: string, detail: { reason?: string; operatorAction?: string; reply?: string }): void {
    this.held.set(id, detail);
  }

  /** The message left the queue or was put back by the operator: no longer held. */
  forget(id: string): void {
    this.held.delete(id);
  }

  private attempted(event: AttemptEvent): void {
    const now = Date.now();
    this.lastAttemptAt = now;
    if (event.accepted.length > 0) this.lastDeliveredAt = now;
    const reached = event.accepted.length > 0 || isSmtpReply(event.reply) || event.route === 'outbox';
    if (reached) this.lastReachedAt = now;
    if (event.decision.action === 'hold') {
      this.held.set(event.messageId, { reason: event.reason, operatorAction: event.operatorAction, reply: event.reply });
    } else {
      this.held.delete(event.messageId);
    }
    if (event.accepted.length > 0 && event.deferred.length === 0 && event.refused.length === 0) {
      this.lastProblem = undefined;
    } else {
      this.lastProblem = { at: now, messageId: event.messageId, reply: event.reply, reason: event.reason, operatorAction: event.operatorAction, reachedUpstream: reached };
    }
  }

  /**
   * Ready unless every attempt for `windowMs` failed to reach the upstream: never tried is ready
   * (a quiet office), and so is an upstream that answers, even with a refusal.
   */
  upstreamProblem(windowMs: number, now = Date.now()): string | undefined {
    if (this.lastAttemptAt === undefined) return undefined;
    const reached = this.lastReachedAt ?? this.startedAt;
    if (this.lastProblem?.reachedUpstream !== false || (this.lastReachedAt !== undefined && this.lastReachedAt >= this.lastAttemptAt)) return undefined;
    if (now - reached < windowMs) return undefined;
    return `the upstream could not be reached since ${new Date(reached).toISOString()}${this.lastProblem.reply ? `: ${this.lastProblem.reply}` : ''}`;
  }
}
