import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { messageEnvelopeSchema } from '../../contract/messageEnvelope.ts';

/**
 * SHA-256 of every message committed in a spool (envelope and body both in queue/). Read after a
 * kill, it is what the dead agent had accepted and not yet removed.
 */
export async function committedInSpool(spoolDir: string): Promise<Set<string>> {
  const queue = join(spoolDir, 'queue');
  const names = new Set(await readdir(queue));
  const shas = new Set<string>();
  for (const name of names) {
    if (!name.endsWith('.json') || name.endsWith('.state.json')) continue;
    const id = name.slice(0, -'.json'.length);
    if (!names.has(`${id}.eml`)) continue;
    // A running agent may remove a message between the listing and the read.
    const text = await readFile(join(queue, name), 'utf8').catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return undefined;
      throw error;
    });
    if (text !== undefined) shas.add(messageEnvelopeSchema.parse(JSON.parse(text)).sha256);
  }
  return shas;
}
