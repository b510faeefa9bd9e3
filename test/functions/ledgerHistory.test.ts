import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { AttemptEvent, OperatorEvent } from '../../delivery/history/deliveryEvent.ts';
import { DeliveryLedger, LEDGER_HISTORY_EVENTS, LeaseLostError, LedgerHistory } from '../../functions/queue-delivery/deliveryLedger.ts';
import { startLocalDynamo, type LocalDynamo } from '../../testbed/aws/localDynamo.ts';

/** The cloud's delivery history in the ledger item (functions/queue-delivery/deliveryLedger.ts). */

function attempt(messageId: string, n: number): AttemptEvent {
  const at = new Date(Date.UTC(2026, 11, 1, 8, 0, n)).toISOString();
  return { type: 'attempt', messageId, at, attempt: n, route: 'upstream', startedAt: at, durationMs: 5, accepted: [], refused: [], deferred: [], decision: { action: 'retry', at } };
}

describe('ledger history', () => {
  let dynamo: LocalDynamo;
  before(async () => {
    dynamo = await startLocalDynamo();
  });
  after(async () => dynamo?.stop());

  test('a claim counts attempts and returns the history; a settlement keeps the first and the latest events', async () => {
    const ledger = new DeliveryLedger(dynamo.client, dynamo.tableName);
    const id = 'ledgerHist0001';
    const first = await ledger.claim(id, 60_000);
    assert.equal(first.status, 'claimed');
    if (first.status !== 'claimed') return;
    assert.deepEqual({ ...first, owner: typeof first.owner }, { status: 'claimed', owner: 'string', deliveredRcpts: [], attempts: 1, refused: [], history: [], noticedTo: [], delayNoticedTo: [] });
    const events = Array.from({ length: LEDGER_HISTORY_EVENTS + 5 }, (_, i) => attempt(id, i + 1));
    await ledger.recordSettlement(id, first.owner, { history: events, refused: [{ rcpt: 'b@contoso.com', reply: '550 5.1.10 no', kind: 'permanent' }], pending: ['c@contoso.com'] });
    assert.equal(await ledger.release(id, first.owner), true);
    const second = await ledger.claim(id, 60_000);
    assert.equal(second.status, 'claimed');
    if (second.status !== 'claimed') return;
    assert.equal(second.attempts, 2);
    assert.deepEqual(second.pendingRcpts, ['c@contoso.com']);
    assert.deepEqual(second.refused, [{ rcpt: 'b@contoso.com', reply: '550 5.1.10 no', kind: 'permanent' }]);
    assert.equal(second.history.length, LEDGER_HISTORY_EVENTS);
    assert.deepEqual(second.history.map((e) => (e as AttemptEvent).attempt).slice(0, 3), [1, 7, 8]);
    assert.equal((second.history.at(-1) as AttemptEvent).attempt, LEDGER_HISTORY_EVENTS + 5);
    // A busy claim counts nothing.
    assert.deepEqual(await ledger.claim(id, 60_000), { status: 'busy' });
    await ledger.release(id, second.owner);
    const third = await ledger.claim(id, 60_000);
    assert.equal(third.status === 'claimed' && third.attempts, 3);
  });

  test('only the lease owner extends, settles or releases the claim; a claim that submitted nothing is not counted', async () => {
    const ledger = new DeliveryLedger(dynamo.client, dynamo.tableName);
    const id = 'ledgerLease0001';
    const start = Date.now();
    // A lease that already ran out: the next claim takes the message over.
    const lapsed = await ledger.claim(id, 1, start - 10);
    assert.equal(lapsed.status, 'claimed');
    if (lapsed.status !== 'claimed') return;
    const current = await ledger.claim(id, 60_000, start);
    assert.equal(current.status, 'claimed');
    if (current.status !== 'claimed') return;
    assert.equal(current.attempts, 2);

    await assert.rejects(ledger.extendLease(id, lapsed.owner, start + 120_000), LeaseLostError);
    await assert.rejects(ledger.recordSettlement(id, lapsed.owner, { history: [attempt(id, 1)], refused: [], pending: [] }), LeaseLostError);
    assert.equal(await ledger.release(id, lapsed.owner), false, 'the lapsed claim freed the current one');
    assert.deepEqual(await ledger.claim(id, 60_000), { status: 'busy' });

    // The owner's heartbeat moves the lease's end: still busy for a claim after the first lease would have run out.
    await ledger.extendLease(id, current.owner, start + 120_000);
    assert.deepEqual(await ledger.claim(id, 60_000, start + 90_000), { status: 'busy' });
    assert.equal(await ledger.release(id, current.owner, { notAnAttempt: true }), true);
    const next = await ledger.claim(id, 60_000);
    assert.equal(next.status === 'claimed' && next.attempts, 2, 'the released claim counted as an attempt');
  });

  test('LedgerHistory appends without a claim and reads back in order; an unknown id has none', async () => {
    const history = new LedgerHistory(new DeliveryLedger(dynamo.client, dynamo.tableName));
    const id = 'ledgerHist0002';
    const operator: OperatorEvent = { type: 'operator', messageId: id, at: '2026-12-01T09:00:00.000Z', action: 'redrive', by: 'admin' };
    await history.append(attempt(id, 1));
    await history.append(operator);
    assert.deepEqual(await history.read(id), [attempt(id, 1), operator]);
    assert.deepEqual(await history.read('ledgerHistNone'), []);
  });
});
