import { runInNewContext } from 'node:vm';

export interface MemoryGovernorOptions {
  /** Collect once Buffers no longer referenced may add up to more than this. */
  maxBufferBytes: number;
  /** Collect once the JS heap grew by more than this since the last full collection. */
  maxHeapGrowthBytes: number;
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
 *   full collection, which V8 starts on its own only after tens of MB of such memory;
 * - with a small young generation, the objects of every transaction waiting for its fsync are
 *   promoted to the old generation (about 1 KB a message), which V8 lets grow to twice its live
 *   size before it collects: 15 MB of garbage after 10,000 small messages.
 * So the young generation does not grow (memoryFlags.ts), and a full collection runs whenever
 * more than `maxBufferBytes` of Buffer memory is held or the heap grew by `maxHeapGrowthBytes`:
 * with a heap of about 20 MB that takes a few ms. When large messages stream through, that would be many times a second: the governor
 * then spends at most `maxTimeShare` of the time collecting and lets the Buffers wait.
 */
const IN_USE_PAUSE_MS = 2_000;

export function startMemoryGovernor(options: MemoryGovernorOptions): { stop(): void; readonly collections: number } {
  // Exposed by memoryFlags.ts for `start` only; without it nothing is done.
  const collect = runInNewContext('typeof gc === "function" ? gc : undefined') as (() => void) | undefined;
  let collections = 0;
  let timer: NodeJS.Timeout | undefined;
  let notBefore = 0;
  let heapAfterCollection = process.memoryUsage().heapUsed;
  if (typeof collect === 'function') {
    timer = setInterval(() => {
      const now = performance.now();
      if (now < notBefore) {
        return;
      }
      const before = process.memoryUsage();
      const buffersHeld = before.arrayBuffers > options.maxBufferBytes;
      if (buffersHeld || before.heapUsed > heapAfterCollection + options.maxHeapGrowthBytes) {
        collect();
        collections += 1;
        const took = performance.now() - now;
        const after = process.memoryUsage();
        heapAfterCollection = after.heapUsed;
        // Mostly still in use (large messages streaming through): collecting again soon would
        // find the same Buffers, so wait longer.
        const inUse = buffersHeld && after.arrayBuffers > before.arrayBuffers / 2;
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
