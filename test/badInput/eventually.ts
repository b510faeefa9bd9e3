import { setTimeout as delay } from 'node:timers/promises';

/**
 * Re-checks `condition` on every turn of the event loop until it holds, for effects that follow
 * an event the test cannot subscribe to (clean-up after a connection closed). Bounded: fails
 * with `what` after `timeoutMs`.
 */
export async function eventually(condition: () => boolean | Promise<boolean>, what: string, timeoutMs = 5_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!(await condition())) {
    if (performance.now() > deadline) {
      throw new Error(`${what}: still not true after ${timeoutMs} ms`);
    }
    await new Promise((resolve) => setImmediate(resolve));
  }
}

/**
 * The gap between two bytes of a trickling (slowloris) client. This is the input's own pace,
 * not a wait for the server: nothing the server does ends it early.
 */
export function pace(ms: number): Promise<void> {
  return delay(ms);
}
