import type { AttemptRecord, SpoolDeliveryLoop } from '../../edge-agent/spool-delivery/spoolDeliveryLoop.ts';
import { withinDeadline } from '../crash/withinDeadline.ts';

/**
 * Every delivery attempt of an embedded agent's worker from the moment it is created, with a way
 * to wait until the given messages have been retried a number of times (the fault has been felt,
 * and the agent keeps trying on its own).
 */
export class AttemptLog {
  readonly records: AttemptRecord[] = [];
  private waiters: (() => void)[] = [];

  constructor(worker: SpoolDeliveryLoop) {
    worker.on('attempt', (record) => {
      this.records.push(record);
      for (const wake of this.waiters.splice(0)) wake();
    });
  }

  retries(id: string): number {
    return this.records.filter((r) => r.id === id && r.action === 'retry').length;
  }

  /** Replies of the retried attempts, oldest first. */
  retryReplies(): string[] {
    return this.records.filter((r) => r.action === 'retry').map((r) => r.reply ?? '');
  }

  async untilRetried(ids: readonly string[], times: number, timeoutMs = 15_000): Promise<void> {
    const met = () => ids.every((id) => this.retries(id) >= times);
    await withinDeadline(
      (async () => {
        while (!met()) await new Promise<void>((resolve) => this.waiters.push(resolve));
      })(),
      timeoutMs,
      `${ids.length} message(s) to be retried ${times} times`,
    );
  }
}
