import type { Readable } from 'node:stream';
import type { SubmitResult, Submitter } from '../../../delivery/smtp/submission.ts';

/**
 * A submitter whose deliveries never finish until the test lets them go, so a spooled message
 * stays in `<spool>/queue` where the test can inspect it. `release()` completes every held
 * delivery (accepted), so the agent can stop without waiting out its shutdown timeout.
 */
export class HeldSubmitter implements Submitter {
  readonly received: { id: string; from: string; to: string[] }[] = [];
  private readonly held: (() => void)[] = [];
  private released = false;

  submit(message: { id: string; from: string; to: string[]; raw: Readable }): Promise<SubmitResult> {
    this.received.push({ id: message.id, from: message.from, to: message.to });
    message.raw.resume();
    const result: SubmitResult = { accepted: [...message.to], rejected: [] };
    if (this.released) {
      return Promise.resolve(result);
    }
    return new Promise((resolve) => this.held.push(() => resolve(result)));
  }

  release(): void {
    this.released = true;
    for (const finish of this.held.splice(0)) {
      finish();
    }
  }

  async close(): Promise<void> {
    this.release();
  }
}
