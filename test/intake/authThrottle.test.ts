import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { AuthThrottle } from '../../edge-agent/intake/authThrottle.ts';

const T0 = 1_700_000_000_000;

describe('AuthThrottle', () => {
  test('answers the first failure at once and doubles the wait for each further one', () => {
    const throttle = new AuthThrottle(250, 5_000, 60_000);
    const delays = [0, 1, 2, 3, 4].map((i) => throttle.fail('10.0.0.5', T0 + i * 1_000));
    assert.deepEqual(delays, [0, 250, 500, 1_000, 2_000]);
  });

  test('never waits longer than the maximum', () => {
    const throttle = new AuthThrottle(250, 5_000, 60_000);
    const delays = Array.from({ length: 10 }, (_, i) => throttle.fail('10.0.0.5', T0 + i));
    assert.deepEqual(delays.slice(-4), [5_000, 5_000, 5_000, 5_000]);
    assert.ok(delays.every((d, i) => i === 0 || d >= (delays[i - 1] ?? 0)), `delays grow: ${delays.join(', ')}`);
  });

  test('counts each address on its own', () => {
    const throttle = new AuthThrottle(250, 5_000, 60_000);
    throttle.fail('10.0.0.5', T0);
    throttle.fail('10.0.0.5', T0 + 1);
    assert.equal(throttle.fail('10.0.0.6', T0 + 2), 0);
    assert.equal(throttle.fail('10.0.0.5', T0 + 3), 500);
  });

  test('a success forgets the failures of that address', () => {
    const throttle = new AuthThrottle(250, 5_000, 60_000);
    throttle.fail('10.0.0.5', T0);
    throttle.fail('10.0.0.5', T0 + 1);
    throttle.succeed('10.0.0.5');
    assert.equal(throttle.fail('10.0.0.5', T0 + 2), 0);
  });

  test('starts over once the window has passed since the last failure', () => {
    const throttle = new AuthThrottle(250, 5_000, 60_000);
    throttle.fail('10.0.0.5', T0);
    assert.equal(throttle.fail('10.0.0.5', T0 + 59_999), 250);
    assert.equal(throttle.fail('10.0.0.5', T0 + 59_999 + 60_000), 0);
  });
});
