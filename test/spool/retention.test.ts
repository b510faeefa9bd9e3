import assert from 'node:assert/strict';
import { mkdir, readFile, readdir, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { rm } from 'node:fs/promises';
import { Spool } from '../../edge-agent/spool/spool.ts';
import { spoolHistory } from '../../edge-agent/spool/spoolHistory.ts';
import { RETENTION_OPERATOR, diskUse, pruneSpool } from '../../edge-agent/spool/retention.ts';
import { makeTempDir } from '../../testbed/helpers/agentHarness.ts';
import { seedSpool } from '../status/seedSpool.ts';

const DAY = 86_400_000;
const PERIODS = { historyMs: 30 * DAY, failedMs: 30 * DAY, outboxMs: 14 * DAY };

describe('retention of failed/, the outbox and history/', () => {
  const dirs: string[] = [];
  after(() => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));

  it('deletes what is past its period, keeps the rest, and keeps a deleted failed message’s history', async () => {
    const dir = await makeTempDir();
    dirs.push(dir);
    const spoolDir = join(dir, 'spool');
    const outbox = join(dir, 'outbox');
    const seeded = await seedSpool(spoolDir);
    const spool = new Spool({ dir: spoolDir });
    await spool.open();
    const history = spoolHistory(spool, spoolDir);
    const now = Date.now();
    // The failed message failed 31 days ago.
    const failurePath = join(spoolDir, 'failed', `${seeded.failed.id}.failure.json`);
    const failure = JSON.parse(await readFile(failurePath, 'utf8'));
    await writeFile(failurePath, JSON.stringify({ ...failure, failedAt: new Date(now - 31 * DAY).toISOString() }));
    // An old and a recent outbox file, an old and a recent done history.
    await mkdir(outbox, { recursive: true });
    await mkdir(join(spoolDir, 'history'), { recursive: true });
    for (const [path, ageDays] of [[join(outbox, 'old.eml'), 15], [join(outbox, 'new.eml'), 1], [join(spoolDir, 'history', 'old-message.history.jsonl'), 31], [join(spoolDir, 'history', 'new-message.history.jsonl'), 2]] as const) {
      await writeFile(path, 'x\n');
      const at = new Date(now - ageDays * DAY);
      await utimes(path, at, at);
    }

    const report = await pruneSpool(spool, history, outbox, PERIODS, now);
    assert.deepEqual(report, { failed: 1, outbox: 1, history: 1 });
    assert.deepEqual(await readdir(join(spoolDir, 'failed')), []);
    assert.deepEqual((await readdir(outbox)).sort(), ['new.eml']);
    assert.deepEqual((await readdir(join(spoolDir, 'history'))).sort(), [`${seeded.failed.id}.history.jsonl`, 'new-message.history.jsonl'].sort());
    const events = await history.read(seeded.failed.id);
    assert.deepEqual(events.map((e) => e.type), ['accepted', 'attempt', 'operator']);
    assert.deepEqual(events.at(-1), { ...events.at(-1), action: 'delete', by: RETENTION_OPERATOR });
    assert.equal((await spool.listQueued()).length, 2, 'queued messages are never pruned');

    const use = await diskUse(spoolDir, outbox);
    assert.deepEqual(Object.keys(use), ['queue', 'failed', 'history', 'outbox']);
    assert.equal(use.failed, 0);
    assert.equal(use.outbox, 2);
    assert.ok((use.queue as number) > 300);
  });
});
