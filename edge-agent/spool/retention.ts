import { readdir, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { Spool } from './spool.ts';
import type { SpoolHistory } from './spoolHistory.ts';
import { deleteMessage } from './operatorActions.ts';

export interface RetentionPeriods {
  /** history/: done or deleted messages' histories. */
  historyMs: number;
  /** failed/: messages given up on, kept for a resend. */
  failedMs: number;
  /** The embedded default's outbox files. */
  outboxMs: number;
}

export interface PruneReport {
  history: number;
  failed: number;
  outbox: number;
}

/** Who the history names for a message deleted because its retention passed. */
export const RETENTION_OPERATOR = 'retention (spool.failedRetention)';

/**
 * Keeps the spool and the outbox from growing for ever: failed messages, the outbox and the
 * histories are deleted once older than their period. A failed message's history is kept (with a
 * `delete` event) for the history period after that, so trace still answers.
 */
export async function pruneSpool(spool: Spool, history: SpoolHistory, outboxDir: string | undefined, periods: RetentionPeriods, now = Date.now()): Promise<PruneReport> {
  let failed = 0;
  for (const { envelope, failure } of await spool.listFailed()) {
    if (now - Date.parse(failure.failedAt) > periods.failedMs) {
      await deleteMessage(spool, history, envelope, 'failed', RETENTION_OPERATOR, () => undefined);
      failed += 1;
    }
  }
  const outbox = outboxDir ? await pruneFiles(outboxDir, periods.outboxMs, now) : 0;
  // After the failed messages: their histories were just written and are not due yet.
  const removedHistory = await history.prune(periods.historyMs, now);
  return { history: removedHistory, failed, outbox };
}

async function pruneFiles(dir: string, retentionMs: number, now: number): Promise<number> {
  let removed = 0;
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    const path = join(dir, name);
    const info = await stat(path).catch(() => undefined);
    if (info?.isFile() && now - info.mtimeMs > retentionMs) {
      await unlink(path).catch(() => undefined);
      removed += 1;
    }
  }
  return removed;
}

/** Bytes on disk by area: the spool's queue, failed and history folders, and the outbox. */
export async function diskUse(spoolDir: string, outboxDir: string | undefined): Promise<Record<string, number>> {
  const areas: [string, string][] = [
    ['queue', join(spoolDir, 'queue')],
    ['failed', join(spoolDir, 'failed')],
    ['history', join(spoolDir, 'history')],
  ];
  if (outboxDir) areas.push(['outbox', outboxDir]);
  const out: Record<string, number> = {};
  for (const [area, dir] of areas) out[area] = await folderBytes(dir);
  return out;
}

async function folderBytes(dir: string): Promise<number> {
  let total = 0;
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    const info = await stat(join(dir, name)).catch(() => undefined);
    if (info?.isFile()) total += info.size;
  }
  return total;
}
