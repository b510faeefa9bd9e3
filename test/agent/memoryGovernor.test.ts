import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, test } from 'node:test';

const CHURN = fileURLToPath(new URL('./memoryChurn.ts', import.meta.url));

interface Churned {
  newSpaceMiB: number;
  collections: number;
  heapUsedMiB: number;
}

async function churn(command: string, kind = 'buffers'): Promise<Churned> {
  const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', CHURN, command, kind], { timeout: 60_000 });
  return JSON.parse(stdout) as Churned;
}

describe('memory of a busy relay', () => {
  test('`start` keeps the young generation small and collects held Buffers; other commands keep V8 defaults', async () => {
    const [relay, other] = await Promise.all([churn('start'), churn('queue')]);
    assert.ok(relay.newSpaceMiB < 8, `young generation of the relay: ${relay.newSpaceMiB} MiB`);
    assert.ok(relay.collections > 0, 'the governor collected while Buffers piled up');
    assert.ok(other.newSpaceMiB >= 8, `young generation with V8 defaults: ${other.newSpaceMiB} MiB (the churn must make it grow)`);
    assert.equal(other.collections, 0, 'no gc is exposed outside start');
  });

  test('`start` also collects when promoted garbage grows the heap, with no Buffers involved', async () => {
    const [relay, other] = await Promise.all([churn('start', 'objects'), churn('queue', 'objects')]);
    assert.ok(relay.collections > 0, 'the governor collected as the heap grew');
    assert.equal(other.collections, 0);
  });
});
