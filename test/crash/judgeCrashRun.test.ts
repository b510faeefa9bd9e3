import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { DeviceAttempt } from './DeviceFleet.ts';
import { duplicateCopies, judgeCrashRun, type KillRecord } from './judgeCrashRun.ts';

function attempt(messageKey: string, n: number, outcome: DeviceAttempt['outcome']): DeviceAttempt {
  const key = `${messageKey}.a${n}`;
  return { key, messageKey, attempt: n, sha256: `sha-${key}`, size: 100, generation: 1, outcome };
}

function kill(round: number, arrivalsBeforeRestart: number, unfinished: string[]): KillRecord {
  return { round, process: 'agent', mode: 'test', arrivalsBeforeRestart, unfinished: new Set(unfinished) };
}

describe('judging a crash run', () => {
  test('an acknowledged attempt that never arrived is lost', () => {
    const verdict = judgeCrashRun([attempt('m1', 1, 'acknowledged'), attempt('m2', 1, 'acknowledged')], ['sha-m1.a1'], []);
    assert.deepEqual(verdict.lost, ['m2.a1']);
    assert.equal(verdict.acknowledged, 2);
  });

  test('a second copy is explained by a kill between the copies that found the message unfinished', () => {
    const verdict = judgeCrashRun([attempt('m1', 1, 'acknowledged')], ['sha-m1.a1', 'sha-m1.a1'], [kill(3, 1, ['sha-m1.a1'])]);
    assert.deepEqual(verdict.windowDuplicates, [{ key: 'm1.a1', copies: 2, acknowledged: true, explainedBy: [3] }]);
    assert.deepEqual(verdict.unexplainedDuplicates, []);
    assert.deepEqual(duplicateCopies(verdict), { window: 1, retry: 0 });
  });

  test('a second copy is unexplained when the killed process had already recorded the message', () => {
    const verdict = judgeCrashRun([attempt('m1', 1, 'acknowledged')], ['sha-m1.a1', 'sha-m1.a1'], [kill(1, 1, [])]);
    assert.equal(verdict.unexplainedDuplicates.length, 1);
  });

  test('two copies from one incarnation are unexplained even when a later kill found the message unfinished', () => {
    const verdict = judgeCrashRun([attempt('m1', 1, 'acknowledged')], ['sha-m1.a1', 'sha-m1.a1'], [kill(1, 2, ['sha-m1.a1'])]);
    assert.equal(verdict.unexplainedDuplicates.length, 1);
  });

  test('a message that arrived through a cut-off attempt and its retry is a retry duplicate', () => {
    const verdict = judgeCrashRun([attempt('m1', 1, 'cut-off'), attempt('m1', 2, 'acknowledged')], ['sha-m1.a1', 'sha-m1.a2'], []);
    assert.deepEqual(verdict.retryDuplicates, [{ messageKey: 'm1', attempts: ['m1.a1', 'm1.a2'] }]);
    assert.equal(verdict.unacknowledgedDelivered, 1);
    assert.deepEqual(duplicateCopies(verdict), { window: 0, retry: 1 });
  });

  test('bytes that match no attempt and messages never acknowledged are reported', () => {
    const verdict = judgeCrashRun([attempt('m1', 1, 'cut-off')], ['sha-torn'], []);
    assert.equal(verdict.unknownArrivals, 1);
    assert.deepEqual(verdict.unsettled, ['m1']);
  });
});
