import assert from 'node:assert/strict';
import { access, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { text } from 'node:stream/consumers';
import { after, before, describe, test } from 'node:test';
import type { DeliveryLogger } from '../../delivery/logger.ts';
import type { Submitter } from '../../delivery/smtp/submission.ts';
import { Spool } from '../../edge-agent/spool/spool.ts';
import { SpoolDeliveryLoop, type AttemptRecord } from '../../edge-agent/spool-delivery/spoolDeliveryLoop.ts';

const exists = (path: string) => access(path).then(() => true, () => false);

/**
 * A queued message's file removed while the loop works on it (an operator's delete, `smarthost`
 * behind the worker's back): never an uncaught ENOENT, and never a retry loop for a message that is gone.
 */
describe('spool delivery loop: a message file that goes', () => {
  let dir: string;
  const uncaught: Error[] = [];
  const onUncaught = (error: Error) => uncaught.push(error);
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'smarthost-vanish-'));
    process.on('uncaughtException', onUncaught);
  });
  after(async () => {
    process.off('uncaughtException', onUncaught);
    await rm(dir, { recursive: true, force: true });
  });

  test('removed during its submission: the body still goes out whole; removed before its turn: skipped, logged with its id', async () => {
    const spool = new Spool({ dir });
    await spool.open();
    const accept = (i: number) => spool.accept({ client: { name: 'mfp', ip: '127.0.0.1' }, helo: 'mfp', mailFrom: 'scanner@contoso.com', rcptTo: [`to${i}@contoso.com`] }, () => Readable.from([Buffer.from(`Subject: scan ${i}\r\n\r\npage ${i}\r\n`)]));
    const first = await accept(1);
    const second = await accept(2);
    const msg = (id: string) => join(spool.queueDir, `${id}.msg`);
    const bodies = new Map<string, string>();
    const submitter: Submitter = {
      async submit(message) {
        // Both files go while the first is being submitted, before a byte of it was read.
        await rm(msg(first.id));
        await rm(msg(second.id));
        bodies.set(message.id, await text(message.raw));
        return { accepted: message.to, rejected: [] };
      },
      close: async () => undefined,
    };
    const warnings: { fields: Record<string, unknown>; msg: string }[] = [];
    const logger: DeliveryLogger = { debug() {}, info() {}, warn: (fields, m) => warnings.push({ fields: fields as Record<string, unknown>, msg: m as string }), error() {} };
    const loop = new SpoolDeliveryLoop({ spool, submitter, policy: { scheduleMs: [50], maxAgeMs: 86_400_000 }, logger, concurrency: 1, throttlePauseMs: 60_000 });
    const records: AttemptRecord[] = [];
    loop.on('attempt', (r) => records.push(r));
    await loop.start([first, second]);
    await loop.whenIdle();
    await loop.stop(1_000);
    assert.deepEqual(records.map((r) => [r.id, r.action]), [[first.id, 'delivered']]);
    assert.match(bodies.get(first.id) as string, /Subject: scan 1\r\n[\s\S]*\r\n\r\npage 1\r\n$/);
    assert.equal(bodies.has(second.id), false, 'a message already gone is not submitted');
    assert.deepEqual(warnings.map((w) => [w.fields.messageId, w.msg]), [[second.id, 'message no longer in the queue, skipped']]);
    assert.equal(await exists(join(spool.queueDir, `${second.id}.state.json`)), false, 'no retry is scheduled for it');
    assert.equal(loop.depth, 0);
    assert.deepEqual(await spool.committedIds(), []);
    assert.deepEqual(uncaught.map(String), []);
    await spool.close();
  });
});
