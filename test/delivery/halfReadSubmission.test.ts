import assert from 'node:assert/strict';
import { mkdtemp, open, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import type { MessageEnvelope } from '../../contract/messageEnvelope.ts';
import { deliverMessage } from '../../delivery/deliverMessage.ts';
import { silentLogger } from '../../delivery/logger.ts';
import type { Submitter } from '../../delivery/smtp/submission.ts';

/**
 * A submitter may return while the message is still half read (recipients refused before DATA, a
 * reply in the middle of DATA). The spool then closes the file under the stream; that must not
 * end in an uncaught ERR_STREAM_PREMATURE_CLOSE, which would stop the agent.
 */
describe('a submission that returns before it read the whole message', () => {
  let dir: string;
  let path: string;
  const size = 4 * 1024 * 1024;
  const uncaught: unknown[] = [];
  const onUncaught = (error: unknown) => uncaught.push(error);

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'half-read-'));
    path = join(dir, 'message.msg');
    await writeFile(path, Buffer.concat([Buffer.from('Subject: big scan\r\n\r\n'), Buffer.alloc(size, 'a')]));
    process.on('uncaughtException', onUncaught);
  });
  after(async () => {
    process.off('uncaughtException', onUncaught);
    await rm(dir, { recursive: true, force: true });
  });

  function envelope(): MessageEnvelope {
    return {
      id: 'halfread0001',
      receivedAt: '2026-12-04T11:00:00.000Z',
      client: { name: 'scanner', ip: '192.0.2.10' },
      helo: 'scanner',
      mailFrom: 'scanner@contoso.com',
      rcptTo: ['desk@contoso.com'],
      size: size + 21,
      sha256: '0'.repeat(64),
    };
  }

  for (const ending of ['accepted', 'failed'] as const) {
    it(`stops reading when the submitter returns (${ending}) and the file is closed after, with nothing uncaught`, async () => {
      const handle = await open(path, 'r');
      let raw: Readable | undefined;
      const submitter: Submitter = {
        async submit(message) {
          raw = message.raw;
          // One chunk, then the upstream has answered.
          await new Promise<void>((resolve) => message.raw.once('data', () => resolve()));
          message.raw.pause();
          if (ending === 'failed') throw Object.assign(new Error('Message rejected'), { responseCode: 554, response: '554 5.6.0 Message rejected' });
          return { accepted: message.to, rejected: [] };
        },
        close: async () => undefined,
      };
      const outcome = await deliverMessage(
        { envelope: envelope(), rcptTo: ['desk@contoso.com'], openBody: () => handle.createReadStream({ start: 0, end: size + 20, autoClose: false }) },
        submitter,
        silentLogger,
      );
      assert.equal(outcome.accepted.length, ending === 'accepted' ? 1 : 0);
      assert.ok(raw?.destroyed, 'the message stream is destroyed once the submission returned');
      // What the spool delivery loop does next.
      await handle.close();
      await sleep(50);
      assert.deepEqual(uncaught, []);
    });
  }
});
