import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { describe, it } from 'node:test';
import type { AttemptEvent } from '../../delivery/history/deliveryEvent.ts';
import { RelayActivity, isSmtpReply } from '../../edge-agent/status/relayActivity.ts';
import type { AttemptRecord, HeldUntriedRecord } from '../../edge-agent/spool-delivery/spoolDeliveryLoop.ts';

/** Readiness from the delivery loop's events: the upstream counts as reachable when it answers at all. */

function attempt(reply: string | undefined, accepted: string[] = []): AttemptEvent {
  return {
    type: 'attempt', messageId: 'm1', at: new Date().toISOString(), attempt: 1, route: 'smtp smtp.office365.com:587', startedAt: new Date().toISOString(), durationMs: 5,
    accepted, refused: [], deferred: accepted.length ? [] : [{ rcpt: 'a@contoso.com', reply: reply ?? '', kind: 'transient' }], reply, kind: accepted.length ? undefined : 'transient',
    decision: accepted.length ? { action: 'done' } : { action: 'retry', at: new Date(Date.now() + 60_000).toISOString() },
  };
}

function loopWith(activity: RelayActivity) {
  const loop = new EventEmitter<{ attempt: [AttemptRecord]; 'held-untried': [HeldUntriedRecord] }>();
  activity.observeLoop(loop);
  return (event: AttemptEvent) => loop.emit('attempt', { id: event.messageId, action: event.accepted.length ? 'delivered' : 'retry', attempts: 1, event, size: 10 });
}

describe('RelayActivity readiness', () => {
  const WINDOW = 15 * 60_000;

  it('is ready when nothing was tried yet', () => {
    assert.equal(new RelayActivity().upstreamProblem(WINDOW), undefined);
  });

  it('is not ready once connection failures have gone on for the whole window', () => {
    const activity = new RelayActivity();
    const emit = loopWith(activity);
    emit(attempt('connect ECONNREFUSED 127.0.0.1:587'));
    assert.equal(activity.upstreamProblem(WINDOW), undefined, 'within the window');
    assert.equal(
      activity.upstreamProblem(WINDOW, Date.now() + WINDOW + 1_000),
      `the upstream could not be reached since ${new Date(activity.startedAt).toISOString()}: connect ECONNREFUSED 127.0.0.1:587`,
    );
  });

  it('is ready when the upstream answers, even with a refusal, and after a delivery', () => {
    const activity = new RelayActivity();
    const emit = loopWith(activity);
    emit(attempt('connect ECONNREFUSED 127.0.0.1:587'));
    emit(attempt('451 4.3.0 Temporary server error'));
    assert.equal(activity.upstreamProblem(WINDOW, Date.now() + 2 * WINDOW), undefined);
    emit(attempt(undefined, ['a@contoso.com']));
    assert.equal(activity.lastProblem, undefined);
    assert.ok(activity.lastDeliveredAt);
  });

  it('tells an SMTP reply from a client error', () => {
    assert.deepEqual(['250 2.0.0 OK', '550-5.7.60 x', 'ETIMEDOUT', 'connect ECONNREFUSED', undefined].map(isSmtpReply), [true, true, false, false, false]);
  });
});

describe('RelayActivity held messages', () => {
  it('counts a message kept back untried as held when the failure it repeats names a fix, and lets it go with its next attempt', () => {
    const activity = new RelayActivity();
    const loop = new EventEmitter<{ attempt: [AttemptRecord]; 'held-untried': [HeldUntriedRecord] }>();
    activity.observeLoop(loop);
    const fix = 'Add-RecipientPermission -Identity scans@contoso.com -Trustee relay@contoso.com -AccessRights SendAs';
    loop.emit('held-untried', { id: 'm1', reply: '550 5.7.60 SMTP; Client does not have permissions to send as this sender', operatorAction: fix });
    loop.emit('held-untried', { id: 'm2', reply: '451 4.3.0 Temporary server error' });
    assert.deepEqual([...activity.held.keys()], ['m1'], 'only the one whose failure the operator must fix');
    assert.equal(activity.held.get('m1')?.operatorAction, fix);
    const delivered = attempt(undefined, ['a@contoso.com']);
    loop.emit('attempt', { id: 'm1', action: 'delivered', attempts: 1, event: delivered, size: 10 });
    assert.equal(activity.held.size, 0);
  });
});
