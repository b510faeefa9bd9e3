import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm, utimes } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import type { AttemptEvent } from '../../delivery/history/deliveryEvent.ts';
import { Spool } from '../../edge-agent/spool/spool.ts';
import { spoolHistory } from '../../edge-agent/spool/spoolHistory.ts';

/** The spool's delivery history (edge-agent/spool/spoolHistory.ts) follows its message. */

function attempt(messageId: string, n: number, action: 'retry' | 'give-up'): AttemptEvent {
  const at = new Date(Date.now() + n).toISOString();
  const decision = action === 'retry' ? { action, at } : { action, reason: 'refused' };
  return { type: 'attempt', messageId, at, attempt: n, route: 'test', startedAt: at, durationMs: 1, accepted: [], refused: [], deferred: [], decision };
}

describe('spool history', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'spool-history-'));
  });
  after(async () => rm(dir, { recursive: true, force: true }));

  test('queue → failed → resend → done: every event kept, once, and the accepted event first', async () => {
    const spool = new Spool({ dir });
    await spool.open();
    const history = spoolHistory(spool, dir);
    const envelope = await spool.accept({ client: { name: 'fax', ip: '127.0.0.1' }, helo: 'fax', mailFrom: 'fax@contoso.com', rcptTo: ['a@contoso.com'] }, () => Readable.from([Buffer.from('x\r\n')]));
    await history.append(attempt(envelope.id, 1, 'retry'));
    assert.deepEqual((await history.read(envelope.id)).map((e) => e.type), ['accepted', 'attempt']);
    await history.append(attempt(envelope.id, 2, 'give-up'));
    await spool.moveToFailed(envelope, { failedAt: new Date().toISOString(), reason: 'refused', state: { attempts: 2, deliveredRcpts: [], rejectedRcpts: [] } });
    await history.moveToFailed(envelope.id);
    assert.deepEqual((await readdir(join(dir, 'failed'))).sort(), [`${envelope.id}.failure.json`, `${envelope.id}.history.jsonl`, `${envelope.id}.msg`]);
    await spool.requeueFailed(envelope.id);
    await history.moveToQueue(envelope.id);
    await history.append({ type: 'operator', messageId: envelope.id, at: new Date(Date.now() + 3).toISOString(), action: 'resend', by: 'admin' });
    await history.archive(envelope, [attempt(envelope.id, 4, 'retry')]);
    await spool.remove(envelope);
    assert.deepEqual(await readdir(join(dir, 'queue')), []);
    const events = await history.read(envelope.id);
    assert.deepEqual(events.map((e) => (e.type === 'attempt' ? `attempt ${e.attempt}` : e.type)), ['accepted', 'attempt 1', 'attempt 2', 'operator', 'attempt 4']);
    await spool.close();
  });

  test('prune removes the history of messages done longer ago than the retention', async () => {
    const history = spoolHistory(new Spool({ dir }), dir);
    const [name] = await readdir(history.historyDir);
    assert.ok(name);
    assert.equal(await history.prune(60_000), 0);
    const old = new Date(Date.now() - 120_000);
    await utimes(join(history.historyDir, name), old, old);
    assert.equal(await history.prune(60_000), 1);
    assert.deepEqual(await readdir(history.historyDir), []);
  });
});
