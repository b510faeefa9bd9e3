import { readdir } from 'node:fs/promises';
import { join } from 'node:path';

/** Files under `dir`, subdirectories included; 0 when it does not exist. */
export async function countFiles(dir: string): Promise<number> {
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
  let count = 0;
  for (const entry of entries) count += entry.isDirectory() ? await countFiles(join(dir, entry.name)) : 1;
  return count;
}

/** Messages the agent still holds: its spool's queue and the files being written (spool/{queue,tmp}). */
export async function agentQueueDepth(spoolDir: string): Promise<number> {
  return (await countFiles(join(spoolDir, 'queue'))) + (await countFiles(join(spoolDir, 'tmp')));
}

/** Queue files Postfix still holds, in every queue a message passes through or waits in. */
export async function postfixQueueDepth(queueDir: string): Promise<number> {
  let count = 0;
  for (const queue of ['maildrop', 'incoming', 'active', 'deferred', 'hold']) count += await countFiles(join(queueDir, queue));
  return count;
}
