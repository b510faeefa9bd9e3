import { setTimeout as delay } from 'node:timers/promises';

/**
 * The one wait of the test suites for a condition no event announces (files in a spool, a log
 * line of a child process, clean-up after a socket closed): checks `probe` every `intervalMs`
 * (0: every turn of the event loop) until it holds, and throws naming `what` after `timeoutMs`.
 */
export async function pollUntil(probe: () => boolean | Promise<boolean>, timeoutMs: number, what: string, intervalMs = 50): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!(await probe())) {
    if (performance.now() > deadline) throw new Error(`waited ${timeoutMs} ms for ${what}`);
    if (intervalMs > 0) await delay(intervalMs);
    else await new Promise((resolve) => setImmediate(resolve));
  }
}
