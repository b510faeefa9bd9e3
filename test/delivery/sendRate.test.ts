import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { SendRate } from '../../delivery/sendRate.ts';

describe('SendRate (deliveries started per minute)', () => {
  test('gives 30 slots in a minute, then the next one when the oldest is a minute old', () => {
    const rate = new SendRate(30);
    const t0 = 1_000_000;
    for (let i = 0; i < 30; i++) assert.equal(rate.tryTake(t0 + i * 100), true, `slot ${i}`);
    assert.equal(rate.tryTake(t0 + 5_000), false, 'the 31st within the minute');
    assert.equal(rate.nextSlotAt(t0 + 5_000), t0 + 60_000);
    assert.equal(rate.tryTake(t0 + 59_999), false);
    assert.equal(rate.tryTake(t0 + 60_000), true, 'the first slot came free');
    assert.equal(rate.tryTake(t0 + 60_050), false, 'the second frees at +60.1 s');
    assert.equal(rate.tryTake(t0 + 60_100), true);
  });

  test('a settled slot counts from when the upstream answered: the next minute opens a minute after that, not after the start', () => {
    const rate = new SendRate(2);
    const t0 = 1_000_000;
    assert.equal(rate.tryTake(t0), true);
    assert.equal(rate.tryTake(t0 + 10), true);
    // The first took 800 ms (TLS, AUTH) before Exchange took it; the second 20 ms.
    rate.settle(t0, t0 + 800);
    rate.settle(t0 + 10, t0 + 30);
    assert.equal(rate.nextSlotAt(t0 + 1_000), t0 + 60_030, 'the earliest answer opens the window');
    assert.equal(rate.tryTake(t0 + 60_029), false);
    assert.equal(rate.tryTake(t0 + 60_030), true);
    assert.equal(rate.nextSlotAt(t0 + 60_031), t0 + 60_800, 'the slow one frees a minute after its answer, not after its start');
    assert.equal(rate.tryTake(t0 + 60_001 + 700), false);
    assert.equal(rate.tryTake(t0 + 60_800), true);
  });

  test('a delivery longer than the window comes back into it when it is settled', () => {
    const rate = new SendRate(1);
    const t0 = 2_000_000;
    assert.equal(rate.tryTake(t0), true);
    assert.equal(rate.used(t0 + 61_000), 0, 'the start is out of the window');
    rate.settle(t0, t0 + 90_000);
    assert.equal(rate.tryTake(t0 + 90_001), false, 'the answer at +90 s holds the slot');
    assert.equal(rate.nextSlotAt(t0 + 90_001), t0 + 150_000);
  });

  test('a free slot is available now', () => {
    assert.equal(new SendRate(3).nextSlotAt(42), 42);
  });

  test('waitForSlot returns at once while slots are free, then waits for the window to open', async () => {
    const rate = new SendRate(2, 300);
    const started = performance.now();
    const first = await rate.waitForSlot();
    await rate.waitForSlot();
    assert.ok(performance.now() - started < 100, 'two free slots take no wait');
    assert.ok(Math.abs(first - Date.now()) < 100, 'resolves with the time of the slot it took');
    await rate.waitForSlot();
    const waited = performance.now() - started;
    assert.ok(waited >= 290, `the third waited for the window (${waited.toFixed(0)} ms)`);
    assert.equal(rate.tryTake(), true, 'the first two slots came free together');
    assert.equal(rate.tryTake(), false, 'the slot it waited for and that one fill the window');
  });
});
