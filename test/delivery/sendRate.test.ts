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

  test('a free slot is available now', () => {
    assert.equal(new SendRate(3).nextSlotAt(42), 42);
  });

  test('waitForSlot returns at once while slots are free, then waits for the window to open', async () => {
    const rate = new SendRate(2, 300);
    const started = performance.now();
    await rate.waitForSlot();
    await rate.waitForSlot();
    assert.ok(performance.now() - started < 100, 'two free slots take no wait');
    await rate.waitForSlot();
    const waited = performance.now() - started;
    assert.ok(waited >= 290, `the third waited for the window (${waited.toFixed(0)} ms)`);
    assert.equal(rate.tryTake(), true, 'the first two slots came free together');
    assert.equal(rate.tryTake(), false, 'the slot it waited for and that one fill the window');
  });
});
