/**
 * Child process for memoryGovernor.test.ts: `node --import tsx memoryChurn.ts <command> [kind]`.
 * Loads memoryFlags.ts as main.ts does, churns memory like a busy relay, and prints what it saw.
 * kind `buffers` (default): Buffers held for a while, like bodies waiting for an fsync.
 * kind `objects`: objects living through a few young collections (promoted) and then dropped, like
 * the per-transaction objects of small messages; no Buffers.
 */
import '../../edge-agent/memoryFlags.ts';
import { getHeapSpaceStatistics } from 'node:v8';
import { setTimeout as sleep } from 'node:timers/promises';
import { startMemoryGovernor } from '../../edge-agent/memoryGovernor.ts';

const kind = process.argv[3] ?? 'buffers';
const governor = startMemoryGovernor({ maxBufferBytes: 4 * 1024 * 1024, maxHeapGrowthBytes: 4 * 1024 * 1024, intervalMs: 20, maxTimeShare: 0.5 });
let keep: unknown[] = [];
if (kind === 'buffers') {
  for (let i = 0; i < 1_000_000; i++) {
    keep.push({ n: i, s: `line ${i}` });
    if (keep.length > 20_000) keep = [];
  }
  let held: Buffer[] = [];
  for (let round = 0; round < 40; round++) {
    held.push(Buffer.alloc(1024 * 1024, round));
    for (let i = 0; i < 50_000; i++) keep.push({ i });
    keep = [];
    // Lets the governor's timer run between rounds, as the event loop does in the relay.
    await sleep(5);
  }
  held = [];
} else {
  for (let round = 0; round < 60; round++) {
    // About 1 MB of small objects a round, kept through several young collections, then dropped.
    const batch: unknown[] = [];
    for (let i = 0; i < 20_000; i++) batch.push({ round, i, s: `transaction ${round}/${i}` });
    keep.push(batch);
    if (keep.length > 3) keep.shift();
    await sleep(5);
  }
  keep = [];
}
await sleep(100);
const newSpace = getHeapSpaceStatistics().find((s) => s.space_name === 'new_space')?.space_size ?? 0;
governor.stop();
process.stdout.write(JSON.stringify({ newSpaceMiB: newSpace / 1048576, collections: governor.collections, heapUsedMiB: process.memoryUsage().heapUsed / 1048576 }));
