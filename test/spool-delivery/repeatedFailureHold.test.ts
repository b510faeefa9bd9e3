import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import type { DeliveryLogger } from '../../delivery/logger.ts';
import { REPEATED_FAILURE_LIMIT } from '../../delivery/repeatedFailureGuard.ts';
import { SubmitError, type Submitter } from '../../delivery/smtp/submission.ts';
import { Spool } from '../../edge-agent/spool/spool.ts';
import { SpoolDeliveryLoop, type AttemptRecord } from '../../edge-agent/spool-delivery/spoolDeliveryLoop.ts';
import { pollUntil } from '../../testbed/helpers/pollUntil.ts';

const SEND_AS_DENIED = '550 5.7.60 SMTP; Client does not have permissions to send as this sender';

/**
 * Before Exchange Online blocks the mailbox for continuous errors, the loop stops sending one
 * sender's mail into the same SendAs denial: after REPEATED_FAILURE_LIMIT in a row the rest is
 * held untried, and goes out once one of the tried ones is delivered.
 */
describe('spool delivery loop: repeated identical operator errors', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'smarthost-repeated-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test(`after ${REPEATED_FAILURE_LIMIT} SendAs denials for one sender its other messages are held untried, then released by a delivery`, async () => {
    const spool = new Spool({ dir });
    await spool.open();
    let granted = false;
    const submitted: { id: string; from: string }[] = [];
    const delivered = new Set<string>();
    const submitter: Submitter = {
      async submit(message) {
        for await (const _chunk of message.raw) void _chunk;
        submitted.push({ id: message.id, from: message.from });
        if (message.from === 'copier@contoso.com' && !granted) {
          throw new SubmitError({ message: SEND_AS_DENIED, response: SEND_AS_DENIED, responseCode: 550, command: 'MAIL FROM' });
        }
        assert.ok(!delivered.has(message.id), `${message.id} delivered twice`);
        delivered.add(message.id);
        return { accepted: message.to, rejected: [] };
      },
      close: async () => undefined,
    };
    const warnings: string[] = [];
    const logger: DeliveryLogger = { debug() {}, info() {}, warn: (_f, m) => warnings.push(m), error() {} };
    // The slow end of the schedule is short here, so the tried messages come back as probes.
    const worker = new SpoolDeliveryLoop({ spool, submitter, policy: { scheduleMs: [100], maxAgeMs: 86_400_000 }, logger, concurrency: 1, throttlePauseMs: 60_000, mailbox: 'relay@contoso.com' });
    const records: AttemptRecord[] = [];
    worker.on('attempt', (r) => records.push(r));
    const heldUntried: string[] = [];
    worker.on('held-untried', (r) => heldUntried.push(r.id));
    await worker.start([]);
    const accept = (from: string, i: number) =>
      spool.accept({ client: { name: 'copier', ip: '127.0.0.1' }, helo: 'copier', mailFrom: from, rcptTo: [`to${i}@contoso.com`] }, () => Readable.from([Buffer.from(`Subject: ${i}\r\n\r\nscan ${i}\r\n`)]));
    // All spooled before any is enqueued: on a loaded machine a slow fsync between two accepts let
    // the first message's 100 ms retry count as a second denial before the second was tried.
    const envelopes = [];
    for (let i = 0; i < REPEATED_FAILURE_LIMIT + 3; i++) envelopes.push(await accept('copier@contoso.com', i));
    const copier = envelopes.map((e) => e.id);
    for (const envelope of envelopes) worker.enqueue(envelope);
    const heldIds = copier.slice(REPEATED_FAILURE_LIMIT);
    await pollUntil(() => heldIds.every((id) => heldUntried.includes(id)), 5_000, 'the messages after the limit held');

    // Only the first REPEATED_FAILURE_LIMIT messages ever reached the upstream.
    assert.deepEqual([...new Set(submitted.map((s) => s.id))].sort(), copier.slice(0, REPEATED_FAILURE_LIMIT).sort());
    for (const id of heldIds) {
      const state = await spool.readState(id);
      assert.equal(state?.attempts, 0);
      assert.equal(state?.lastError, SEND_AS_DENIED);
      assert.match(state?.operatorAction ?? '', /Add-RecipientPermission -Identity copier@contoso\.com -AccessRights SendAs -Trustee relay@contoso\.com/);
    }
    assert.ok(warnings.some((w) => /^held without trying: the last \d+ messages as this sender failed the same way/.test(w)));

    // Another sender is not held.
    const other = await accept('scanner@contoso.com', 99);
    worker.enqueue(other);
    await pollUntil(() => delivered.has(other.id), 5_000, 'the other sender delivered');

    // The operator adds the grant: the next probe is delivered and releases the held ones.
    granted = true;
    await pollUntil(() => copier.every((id) => delivered.has(id)), 10_000, 'every copier message delivered');
    await worker.stop(1_000);
    await spool.close();
    assert.equal(delivered.size, copier.length + 1);
  });
});
