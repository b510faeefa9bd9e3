import assert from 'node:assert/strict';
import { readdir, readlink, rm } from 'node:fs/promises';
import { after, describe, test } from 'node:test';
import { DirectorySync } from '../../edge-agent/spool/directorySync.ts';
import { makeTempDir } from '../../testbed/helpers/agentHarness.ts';

/** Descriptors of this process that point at `dir` (Linux /proc). */
async function descriptorsOn(dir: string): Promise<number> {
  let count = 0;
  for (const fd of await readdir('/proc/self/fd')) {
    const target = await readlink(`/proc/self/fd/${fd}`).catch(() => '');
    if (target === dir) count += 1;
  }
  return count;
}

describe('DirectorySync', () => {
  const dirs: string[] = [];
  after(async () => {
    await Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true })));
  });

  test('callers arriving during a sync share the next one; one descriptor serves every sync until close', async () => {
    const dir = await makeTempDir('smarthost-dirsync-');
    dirs.push(dir);
    const sync = new DirectorySync(dir);
    const first = sync.sync();
    const waiting = [sync.sync(), sync.sync(), sync.sync()];
    assert.equal(waiting[0], waiting[1], 'callers during a running sync share one promise');
    assert.equal(waiting[1], waiting[2]);
    assert.notEqual(first, waiting[0], 'and not the running one: it may have started before their renames');
    await Promise.all([first, ...waiting]);
    for (let i = 0; i < 5; i++) await sync.sync();
    assert.equal(await descriptorsOn(dir), 1, 'the folder stays open between syncs');
    await sync.close();
    assert.equal(await descriptorsOn(dir), 0, 'closed');
    await sync.sync();
    assert.equal(await descriptorsOn(dir), 1, 'a sync after close opens it again');
    await sync.close();
  });

  test('a folder that is gone fails the sync, and the next sync tries again', async () => {
    const dir = await makeTempDir('smarthost-dirsync-');
    const sync = new DirectorySync(`${dir}/missing`);
    await assert.rejects(sync.sync(), { code: 'ENOENT' });
    await assert.rejects(sync.sync(), { code: 'ENOENT' });
    await rm(dir, { recursive: true, force: true });
  });
});
