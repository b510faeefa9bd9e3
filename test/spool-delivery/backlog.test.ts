import assert from 'node:assert/strict';
import { mkdtemp, rm, unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import type { DeliveryLogger } from '../../delivery/logger.ts';
import type { Submitter } from '../../delivery/smtp/submission.ts';
import { Spool } from '../../edge-agent/spool/spool.ts';
import { SpoolDeliveryLoop } from '../../edge-agent/spool-delivery/spoolDeliveryLoop.ts';
import { splitRelayTrace } from '../../testbed/helpers/relayTrace.ts';

/**
 * With a backlog the worker keeps only ids of the later messages and reads each envelope from the
 * spool when its turn comes: every message still goes out once, with its own envelope and body,
 * and a message an operator removed meanwhile is skipped, not retried for ever.
 */
describe('local delivery worker with a backlog', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'smarthost-backlog-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test('600 queued messages (more than it keeps in memory) are delivered once each, as received', async () => {
    const intake = new Spool({ dir });
    await intake.open();
    const expected = new Map<string, { from: string; body: string }>();
    for (let i = 0; i < 600; i++) {
      const body = `Subject: ${i}\r\n\r\nbody ${i}\r\n`;
      const envelope = await intake.accept(
        { client: { name: 'scanner', ip: '127.0.0.1' }, helo: 'scanner', mailFrom: `device${i}@contoso.com`, rcptTo: [`to${i}@contoso.com`] },
        () => Readable.from([Buffer.from(body)]),
      );
      expected.set(envelope.id, { from: `device${i}@contoso.com`, body });
    }
    const removed = [...expected.keys()][500]!;
    await intake.close();
    // As after a restart: the worker gets what the spool holds.
    const spool = new Spool({ dir });
    const queued = await spool.open();

    const delivered = new Map<string, { from: string; to: string[]; body: string }>();
    let paused = true;
    let resume: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => (resume = resolve));
    const submitter: Submitter = {
      async submit(message) {
        if (paused) await gate;
        const chunks: Buffer[] = [];
        for await (const chunk of message.raw) chunks.push(chunk as Buffer);
        assert.ok(!delivered.has(message.id), `${message.id} delivered twice`);
        const { trace, message: below } = splitRelayTrace(Buffer.concat(chunks), message.from);
        assert.match(trace ?? '', new RegExp(`by smarthost id ${message.id};`), 'each message carries its own envelope\'s trace field');
        delivered.set(message.id, { from: message.from, to: message.to, body: below.toString() });
        return { accepted: message.to, rejected: [] };
      },
      close: async () => undefined,
    };
    const logged: string[] = [];
    const record = (level: string) => (fields: Record<string, unknown>, message: string) => logged.push(`${level} ${message} ${String(fields.messageId ?? '')}`);
    const logger: DeliveryLogger = { debug() {}, info() {}, warn: record('warn'), error: record('error') };
    const worker = new SpoolDeliveryLoop({
      spool,
      submitter,
      policy: { scheduleMs: [60_000], maxAgeMs: 86_400_000 },
      logger,
      concurrency: 3,
      throttlePauseMs: 60_000,
    });
    await worker.start(queued);
    // Removed while it waits (an operator deleting a queued file): it has no envelope left to read.
    await unlink(join(spool.queueDir, `${removed}.msg`));
    paused = false;
    resume();
    await worker.whenIdle();
    await worker.stop(1_000);

    assert.deepEqual(logged, [`warn message no longer in the queue, skipped ${removed}`]);
    assert.equal(delivered.size, 599);
    assert.ok(!delivered.has(removed));
    for (const [id, { from, body }] of expected) {
      if (id === removed) continue;
      const got = delivered.get(id);
      assert.ok(got, `${id} not delivered`);
      assert.equal(got.from, from);
      assert.equal(got.body, body);
      assert.equal(got.to.length, 1);
    }
    assert.deepEqual(await spool.committedIds(), []);
    await spool.close();
  });
});
