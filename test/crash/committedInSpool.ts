import { Spool } from '../../edge-agent/spool/spool.ts';

/**
 * SHA-256 of every message committed in a spool (its file in queue/). Read after a kill, it is
 * what the dead agent had accepted and not yet removed.
 */
export async function committedInSpool(spoolDir: string): Promise<Set<string>> {
  const spool = new Spool({ dir: spoolDir });
  const shas = new Set<string>();
  for (const id of await spool.committedIds()) {
    // A running agent may remove a message between the listing and the read.
    const envelope = await spool.readEnvelope(id).catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return undefined;
      throw error;
    });
    if (envelope) shas.add(envelope.sha256);
  }
  return shas;
}
