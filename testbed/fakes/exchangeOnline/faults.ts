import { parseReply, type SmtpReply } from './replies.ts';

export type FaultStage = 'connect' | 'auth' | 'mail' | 'rcpt' | 'data';

/**
 * Scripted replies, consumed in order per stage: the next `times` commands reaching that stage
 * get the reply instead of their normal processing. 'connect' replaces the greeting (and the
 * connection is closed after it), 'data' replaces the reply to the final dot.
 */
export class FaultScript {
  private readonly queues = new Map<FaultStage, SmtpReply[]>();

  add(stage: FaultStage, reply: string, times = 1): void {
    if (!Number.isInteger(times) || times < 1) throw new Error(`times must be a positive integer, got ${times}`);
    const parsed = parseReply(reply);
    if (parsed.code < 400) throw new Error(`a scripted fault must be a 4xx or 5xx reply, got ${reply}`);
    const queue = this.queues.get(stage) ?? [];
    for (let i = 0; i < times; i++) queue.push(parsed);
    this.queues.set(stage, queue);
  }

  /** The reply to use now at this stage, if one is scripted. */
  take(stage: FaultStage): SmtpReply | undefined {
    return this.queues.get(stage)?.shift();
  }

  pending(stage: FaultStage): number {
    return this.queues.get(stage)?.length ?? 0;
  }
}
