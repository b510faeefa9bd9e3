import type { AttemptEvent } from './history/deliveryEvent.ts';

/**
 * Consecutive attempts of one sender refused the same way, with a problem only the operator can
 * fix, after which the rest of that sender's mail is held untried. Exchange Online blocks a whole
 * mailbox that keeps getting the same error (550 5.2.251-5.2.255, not lifted by support), so the
 * relay stops well before that: twenty SendAs denials in a row must not be sent.
 */
export const REPEATED_FAILURE_LIMIT = 5;

export interface RepeatedFailure {
  /** The last reply of the run, e.g. '550 5.7.60 SMTP; Client does not have permissions ...'. */
  reply: string;
  operatorAction?: string;
  /** Consecutive identical failures so far. */
  count: number;
}

/** The basic and enhanced code: '550 5.7.60 SMTP; ...' → '550 5.7.60'. Texts vary by server. */
function signatureOf(reply: string): string {
  return /^\d{3}(?:[ -]\d\.\d{1,3}\.\d{1,3})?/.exec(reply)?.[0] ?? reply;
}

/**
 * Counts, per class of mail (the address it is sent as), consecutive identical needs-operator
 * failures; any delivery of the class ends the run. Kept by the runtime that decides what to try next.
 */
export class RepeatedFailureGuard {
  private readonly runs = new Map<string, RepeatedFailure>();

  constructor(private readonly limit = REPEATED_FAILURE_LIMIT) {}

  /** The class a message belongs to: the address it goes out as. */
  static classOf(envelope: { mailFrom: string; sendAs?: string }): string {
    return (envelope.sendAs ?? envelope.mailFrom).toLowerCase();
  }

  /** Counts an attempt's event; returns true when it ended a run that held mail (release the held). */
  record(key: string, event: AttemptEvent): boolean {
    if (event.kind === 'config' && event.reply) {
      const run = this.runs.get(key);
      if (run && signatureOf(run.reply) === signatureOf(event.reply)) {
        run.count += 1;
        run.reply = event.reply;
      } else {
        this.runs.set(key, { reply: event.reply, count: 1, ...(event.operatorAction ? { operatorAction: event.operatorAction } : {}) });
      }
      return false;
    }
    // A transient failure says nothing about the operator's fix; a delivery does.
    if (event.accepted.length > 0) return this.release(key);
    return false;
  }

  /** The run that holds this class's untried mail, if it reached the limit. */
  holding(key: string): RepeatedFailure | undefined {
    const run = this.runs.get(key);
    return run && run.count >= this.limit ? run : undefined;
  }

  /** Ends the run (the operator resent a message of the class); true when it was holding mail. */
  release(key: string): boolean {
    const wasHolding = this.holding(key) !== undefined;
    this.runs.delete(key);
    return wasHolding;
  }
}
