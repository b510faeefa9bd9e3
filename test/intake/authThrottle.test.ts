import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { AuthThrottle } from '../../edge-agent/intake/authThrottle.ts';

const T0 = 1_700_000_000_000;

/** Per-address behaviour only: no global interval. */
const perAddress = () => new AuthThrottle(250, 5_000, 60_000, 0);

describe('AuthThrottle', () => {
  test('answers the first failure at once and doubles the wait for each further one', () => {
    const throttle = perAddress();
    const delays = [0, 1, 2, 3, 4].map((i) => throttle.fail('10.0.0.5', T0 + i * 10_000));
    assert.deepEqual(delays, [0, 250, 500, 1_000, 2_000]);
  });

  test('never waits longer than the maximum for a failure after the previous one was answered', () => {
    const throttle = perAddress();
    let now = T0;
    const delays: number[] = [];
    for (let i = 0; i < 10; i++) {
      const delay = throttle.fail('10.0.0.5', now);
      delays.push(delay);
      now += delay;
    }
    assert.deepEqual(delays.slice(-4), [5_000, 5_000, 5_000, 5_000]);
    assert.ok(delays.every((d, i) => i === 0 || d >= (delays[i - 1] ?? 0)), `delays grow: ${delays.join(', ')}`);
  });

  test('failures from one address at the same moment (parallel connections) are answered one after another', () => {
    const throttle = perAddress();
    const delays = Array.from({ length: 7 }, () => throttle.fail('10.0.0.5', T0));
    assert.deepEqual(delays, [0, 250, 750, 1_750, 3_750, 7_750, 12_750]);
  });

  test('over all addresses at most one failure is answered per global interval', () => {
    const throttle = new AuthThrottle(250, 5_000, 60_000, 100);
    const delays = ['10.0.0.1', '10.0.0.2', '10.0.0.3', '10.0.0.4'].map((ip) => throttle.fail(ip, T0));
    assert.deepEqual(delays, [0, 100, 200, 300]);
    // Once the queue has passed, a new address is answered at once again.
    assert.equal(throttle.fail('10.0.0.9', T0 + 1_000), 0);
  });

  test('counts each address on its own', () => {
    const throttle = perAddress();
    throttle.fail('10.0.0.5', T0);
    throttle.fail('10.0.0.5', T0 + 1);
    assert.equal(throttle.fail('10.0.0.6', T0 + 2), 0);
    assert.equal(throttle.fail('10.0.0.5', T0 + 10_000), 500);
  });

  test('a success forgets the failures of that address', () => {
    const throttle = perAddress();
    throttle.fail('10.0.0.5', T0);
    throttle.fail('10.0.0.5', T0 + 1);
    throttle.succeed('10.0.0.5');
    assert.equal(throttle.fail('10.0.0.5', T0 + 2), 0);
  });

  test('starts over once the window has passed since the last failure', () => {
    const throttle = perAddress();
    throttle.fail('10.0.0.5', T0);
    assert.equal(throttle.fail('10.0.0.5', T0 + 59_999), 250);
    assert.equal(throttle.fail('10.0.0.5', T0 + 59_999 + 60_000), 0);
  });
});
