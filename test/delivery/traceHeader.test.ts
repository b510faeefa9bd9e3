import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { describe, test } from 'node:test';
import { traceHeader, withTraceHeader } from '../../delivery/traceHeader.ts';

const ENVELOPE = { id: 'Xf3pL0sQ7vNa2Wm8Jc4E', helo: 'scanner-2f.lan', client: { name: 'scanner', ip: '192.168.1.40' }, receivedAt: '2026-11-27T09:05:03.250Z' };

function traceOf(changes: Partial<typeof ENVELOPE> & { ip?: string }): string {
  const { ip, ...rest } = changes;
  return traceHeader({ ...ENVELOPE, ...rest, client: { name: 'scanner', ip: ip ?? ENVELOPE.client.ip } }).toString('latin1');
}

describe('the Received: field the relay adds (RFC 5321 section 4.4)', () => {
  test('names the HELO name, the device address, the relay, the message id and the time of acceptance', () => {
    assert.equal(traceOf({}), 'Received: from scanner-2f.lan ([192.168.1.40])\r\n\tby smarthost id Xf3pL0sQ7vNa2Wm8Jc4E;\r\n\tFri, 27 Nov 2026 09:05:03 +0000\r\n');
  });

  test('address literals: IPv6 tagged, IPv4-mapped IPv6 shown as IPv4', () => {
    assert.match(traceOf({ ip: '::1' }), /^Received: from scanner-2f\.lan \(\[IPv6:::1\]\)\r\n/);
    assert.match(traceOf({ ip: '::ffff:10.0.0.7' }), /^Received: from scanner-2f\.lan \(\[10\.0\.0\.7\]\)\r\n/);
  });

  test('a HELO name that could break the field (spaces, comments, ";", non-ASCII, empty) is written as "unknown"', () => {
    for (const helo of ['two words', 'a(b)', 'x;y', 'caf\u00e9', '', 'back\\slash', 'x'.repeat(256)]) {
      assert.match(traceOf({ helo }), /^Received: from unknown \(\[192\.168\.1\.40\]\)\r\n/, JSON.stringify(helo));
    }
    assert.match(traceOf({ helo: '[192.168.1.40]' }), /^Received: from \[192\.168\.1\.40\] /, 'an address literal is a valid HELO argument');
  });

  test('goes on top of the message, whose bytes follow unchanged', async () => {
    const body = Buffer.from('Subject: x\r\n\r\nbody\r\n');
    const out = await buffer(withTraceHeader(Readable.from([body.subarray(0, 5), body.subarray(5)]), traceHeader(ENVELOPE)));
    assert.deepEqual(out, Buffer.concat([traceHeader(ENVELOPE), body]));
  });

  test('a failing body fails the stream', async () => {
    const failing = new Readable({ read() { this.destroy(new Error('disk gone')); } });
    await assert.rejects(buffer(withTraceHeader(failing, traceHeader(ENVELOPE))), /disk gone/);
  });
});
