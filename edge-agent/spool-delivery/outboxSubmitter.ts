import { mkdir, open, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { SubmitResult, Submitter } from '../../delivery/smtp/submission.ts';

/**
 * The embedded default's "upstream": with no Microsoft 365 configured yet, each message is
 * written to the outbox as `<id>.eml` (exactly what would have been submitted, send-as applied)
 * with `<id>.envelope.json` beside it, so a new user sees a scan arrive before any cloud set-up.
 */
export class OutboxSubmitter implements Submitter {
  constructor(private readonly dir: string) {}

  async submit(message: { id: string; from: string; to: string[]; raw: Readable }): Promise<SubmitResult> {
    await mkdir(this.dir, { recursive: true });
    const emlPath = join(this.dir, `${message.id}.eml`);
    const partial = `${emlPath}.partial`;
    try {
      const handle = await open(partial, 'w');
      await pipeline(message.raw, handle.createWriteStream({ flush: true }));
      await rename(partial, emlPath);
      const envelope = { id: message.id, mailFrom: message.from, rcptTo: message.to, writtenAt: new Date().toISOString() };
      const envelopeHandle = await open(join(this.dir, `${message.id}.envelope.json`), 'w');
      try {
        await envelopeHandle.writeFile(JSON.stringify(envelope, null, 2) + '\n');
        await envelopeHandle.sync();
      } finally {
        await envelopeHandle.close();
      }
    } catch (error) {
      await rm(partial, { force: true });
      throw error;
    }
    return { accepted: [...message.to], rejected: [], response: `written to ${emlPath}` };
  }

  async close(): Promise<void> {}
}
