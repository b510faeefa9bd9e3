import { runInNewContext } from 'node:vm';

export interface MemoryGovernorOptions {
  /** Collect once Buffers no longer referenced may add up to more than this. */
  maxBufferBytes: number;
  /** How often to look. */
  intervalMs: number;
  /** At most this share of the time in the collections it starts (a large, busy heap collects less often). */
  maxTimeShare: number;
}

/**
 * Keeps a busy agent's memory near its idle size, for small boxes. Two V8 defaults make a relay
 * that streams mail through Buffers grow by 30 to 60 MB under load:
 * - the young generation grows to 16 MB semi-spaces (32 MB resident) once allocation is busy;
 *   kept at its initial 1 MB, the agent's short-lived objects still die young;
 * - a Buffer that lived through a few collections (one waiting for an fsync) is only freed by a
 *   full collection, which V8 starts on its own only after tens of MB of such memory.
 * So the young generation does not grow (memoryFlags.ts), and a full collection runs whenever
 * more than `maxBufferBytes` of Buffer memory is held: with a heap of about 20 MB that takes a
 * few ms. When large messages stream through, that would be many times a second: the governor
 * then spends at most `maxTimeShare` of the time collecting and lets the Buffers wait.
 */
const IN_USE_PAUSE_MS = 2_000;

export function startMemoryGovernor(options: MemoryGovernorOptions): { stop(): void; readonly collections: number } {
  // Exposed by memoryFlags.ts for `start` only; without it nothing is done.
  const collect = runInNewContext('typeof gc === "function" ? gc : undefined') as (() => void) | undefined;
  let collections = 0;
  let timer: NodeJS.Timeout | undefined;
  let notBefore = 0;
  if (typeof collect === 'function') {
    timer = setInterval(() => {
      const now = performance.now();
      if (now < notBefore) {
        return;
      }
      const before = process.memoryUsage().arrayBuffers;
      if (before > options.maxBufferBytes) {
        collect();
        collections += 1;
        const took = performance.now() - now;
        // Mostly still in use (large messages streaming through): collecting again soon would
        // find the same Buffers, so wait longer.
        const inUse = process.memoryUsage().arrayBuffers > before / 2;
        notBefore = now + Math.max(took / options.maxTimeShare, inUse ? IN_USE_PAUSE_MS : 0);
      }
    }, options.intervalMs);
    timer.unref();
  }
  return {
    stop: () => clearInterval(timer),
    get collections() {
      return collections;
    },
  };
}
