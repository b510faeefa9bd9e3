/**
 * Child process for memoryGovernor.test.ts: `node --import tsx memoryChurn.ts <command>`. Loads
 * memoryFlags.ts as main.ts does, churns the heap like a busy relay, and prints what it saw.
 */
import '../../edge-agent/memoryFlags.ts';
import { getHeapSpaceStatistics } from 'node:v8';
import { setTimeout as sleep } from 'node:timers/promises';
import { startMemoryGovernor } from '../../edge-agent/memoryGovernor.ts';

const governor = startMemoryGovernor({ maxBufferBytes: 4 * 1024 * 1024, intervalMs: 20, maxTimeShare: 0.5 });
let keep: unknown[] = [];
for (let i = 0; i < 1_000_000; i++) {
  keep.push({ n: i, s: `line ${i}` });
  if (keep.length > 20_000) keep = [];
}
// Buffers that live through several collections before they are dropped, like bodies waiting for an fsync.
let held: Buffer[] = [];
for (let round = 0; round < 40; round++) {
  held.push(Buffer.alloc(1024 * 1024, round));
  for (let i = 0; i < 50_000; i++) keep.push({ i });
  keep = [];
  // Lets the governor's timer run between rounds, as the event loop does in the relay.
  await sleep(5);
}
held = [];
await sleep(100);
const newSpace = getHeapSpaceStatistics().find((s) => s.space_name === 'new_space')?.space_size ?? 0;
governor.stop();
process.stdout.write(JSON.stringify({ newSpaceMiB: newSpace / 1048576, collections: governor.collections, held: held.length }));
