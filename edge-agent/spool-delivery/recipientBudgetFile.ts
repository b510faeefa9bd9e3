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
 * The counts are written at most this often: every delivery changes them, and an fsync'd rewrite
 * per message would double the delivery's disk flushes. A crash loses at most these seconds of
 * counts: a few recipients Exchange may then refuse near the daily limit, never mail.
 */
export const BUDGET_SAVE_INTERVAL_MS = 5_000;

/**
 * The office box's MailboxBudgetStore: one process delivers, so the pool's own counts are the whole
 * truth and every take is granted; this keeps them across restarts, so a restart does not hand a
 * mailbox a fresh 10,000 recipients. Messages per minute are not kept (a restart loses at most a
 * minute of them). Written in the background, one write at a time and at most one every
 * BUDGET_SAVE_INTERVAL_MS (the latest counts; flush() writes what waits), whole to a temporary file, fsync'd and renamed over the old one: a
 * crash leaves the old counts or the new, never half a file. An unreadable file counts as empty
 * (logged by the pool's warning), since the counts only protect against Exchange's refusal.
 */
export function recipientBudgetFile(spoolDir: string, onSaveError: (error: unknown) => void = () => undefined): MailboxBudgetStore {
  const path = join(spoolDir, RECIPIENT_BUDGET_FILE);
  const tmp = `${path}.tmp`;
  let saving: Promise<void> | undefined;
  let next: (() => Record<string, RollingBuckets>) | undefined;
  let later: NodeJS.Timeout | undefined;
  let lastWriteAt = -Infinity;
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
  const writeNow = (): void => {
    clearTimeout(later);
    later = undefined;
    const counts = next;
    next = undefined;
    if (!counts) return;
    lastWriteAt = Date.now();
    saving = write(counts())
      .catch(onSaveError)
      .finally(() => {
        saving = undefined;
        if (next) schedule();
      });
  };
  const schedule = (): void => {
    if (saving || later) return;
    const wait = lastWriteAt + BUDGET_SAVE_INTERVAL_MS - Date.now();
    if (wait <= 0) writeNow();
    else (later = setTimeout(writeNow, wait)).unref();
  };
  const save = (counts: () => Record<string, RollingBuckets>): void => {
    next = counts;
    schedule();
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
      // Shutdown: what waits for its interval is written now.
      while (saving || next) {
        if (saving) await saving;
        else writeNow();
      }
    },
  };
}
