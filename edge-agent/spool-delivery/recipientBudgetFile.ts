import { open, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { RecipientBudgetStore } from '../../delivery/pool/mailboxPool.ts';
import type { RollingBuckets } from '../../delivery/pool/rollingCount.ts';

/** In the spool folder: the recipients each mailbox sent to in the last 24 hours, by minute. */
export const RECIPIENT_BUDGET_FILE = 'recipient-budget.json';

interface BudgetFile {
  version: 1;
  mailboxes: Record<string, RollingBuckets>;
}

/**
 * Keeps the pool's recipient counts across restarts, so a restart does not hand a mailbox a fresh
 * 10,000 recipients. Written whole to a temporary file, fsync'd and renamed over the old one: a
 * crash leaves the old counts or the new, never half a file. An unreadable file counts as empty
 * (logged by the caller's warning), since the counts only protect against Exchange's refusal.
 */
export function recipientBudgetFile(spoolDir: string): RecipientBudgetStore {
  const path = join(spoolDir, RECIPIENT_BUDGET_FILE);
  const tmp = `${path}.tmp`;
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
    async save(mailboxes) {
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
    },
  };
}
