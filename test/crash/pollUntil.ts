import { setTimeout as delay } from 'node:timers/promises';

/**
 * Checks `probe` until it holds, every 50 ms, for at most `timeoutMs`: for conditions no event
 * announces (files in a spool, log lines of a child process). Throws naming `what`.
 */
export async function pollUntil(probe: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await probe()) return;
    if (Date.now() > deadline) throw new Error(`waited ${timeoutMs} ms for ${what}`);
    await delay(50);
  }
}
