import assert from 'node:assert/strict';
import type { CapturedMessage } from '../../testbed/fakes/fakeExchangeOnline.ts';
import type { DeviceSend } from './faultDevice.ts';

/**
 * Every accepted message arrived upstream exactly once, byte for byte; nothing a device was
 * refused for arrived (a refused device keeps the message and sends it again itself).
 */
export function assertDeliveredOnce(arrivals: readonly CapturedMessage[], sends: readonly DeviceSend[]): void {
  const copies = new Map<string, number>();
  for (const message of arrivals) copies.set(message.sha256, (copies.get(message.sha256) ?? 0) + 1);
  for (const send of sends) {
    const expected = send.accepted ? 1 : 0;
    assert.equal(copies.get(send.sha256) ?? 0, expected, `${send.subject} (${send.reply}) arrived ${copies.get(send.sha256) ?? 0} times, expected ${expected}`);
  }
}
