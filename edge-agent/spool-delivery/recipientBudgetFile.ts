import { open, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { MailboxBudgetStore } from '../../delivery/pool/mailboxBudget.ts';
import type { RollingBuckets } from '../../delivery/pool/rollingCount.ts';

/** In the spool folder: the recipients each mailbox sent to in the last 24 hours, by minute. */
export const RECIPIENT_BUDGET_FILE = 'recipient-budget.json';

interface BudgetFile {
  version: 1;
  mailboxes: Record<string, RollingBuckets>;
}

/**
 * The office box's MailboxBudgetStore: one process delivers, so the pool's own counts are the whole
 * truth and every take is granted; this keeps them across restarts, so a restart does not hand a
 * mailbox a fresh 10,000 recipients. Messages per minute are not kept (a restart loses at most a
 * minute of them). Written in the background, one write at a time (changes during a write are
 * written right after it), whole to a temporary file, fsync'd and renamed over the old one: a
 * crash leaves the old counts or the new, never half a file. An unreadable file counts as empty
 * (logged by the pool's warning), since the counts only protect against Exchange's refusal.
 */
export function recipientBudgetFile(spoolDir: string, onSaveError: (error: unknown) => void = () => undefined): MailboxBudgetStore {
  const path = join(spoolDir, RECIPIENT_BUDGET_FILE);
  const tmp = `${path}.tmp`;
  let saving: Promise<void> | undefined;
  let next: (() => Record<string, RollingBuckets>) | undefined;
  const write = async (mailboxes: Record<string, RollingBuckets>): Promise<void> => {
    const content: BudgetFile = { version: 1, mailboxes };
    const handle = await open(tmp, 'w');
    try {
      await handle.writeFile(JSON.stringify(content));
      await handle.sync();
    } catch (error) {
      await handle.close().catch(() => undefined);
      await rm(tmp, { force: true });
      throw error;
    }
    await handle.close();
    await rename(tmp, path);
  };
  const save = (counts: () => Record<string, RollingBuckets>): void => {
    if (saving) {
      next = counts;
      return;
    }
    saving = write(counts())
      .catch(onSaveError)
      .finally(() => {
        saving = undefined;
        const again = next;
        next = undefined;
        if (again) save(again);
      });
  };
  return {
    async load() {
      let text: string;
      try {
        text = await readFile(path, 'utf8');
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') return {};
        throw error;
      }
      const parsed = JSON.parse(text) as Partial<BudgetFile>;
      return parsed.version === 1 && parsed.mailboxes && typeof parsed.mailboxes === 'object' ? parsed.mailboxes : {};
    },
    async take(request) {
      if (request.recipients > 0) save(request.counts);
      return { granted: { mailbox: request.mailbox, at: request.now, recipients: request.recipients, message: false } };
    },
    async giveBack(_grant, unused, counts) {
      if (unused.recipients > 0) save(counts);
    },
    async flush() {
      while (saving) await saving;
    },
  };
}
