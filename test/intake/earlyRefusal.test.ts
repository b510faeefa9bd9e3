import assert from 'node:assert/strict';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { AgentConfigInput } from '../../edge-agent/config/agentConfigSchema.ts';
import { startTestAgent, type TestAgent } from '../helpers/agentHarness.ts';
import { listDir } from './helpers/messageBytes.ts';
import { openSession, queuedId, quit, sendMessage, startData } from './helpers/smtpSession.ts';

/**
 * A refusal can be decided while the spool is still opening the temp file: a small message
 * arrives whole in one read. Here the temp file opens only when the test says so, after a round
 * trip on a second connection has shown that the server has read the first one's bytes.
 */
function refusedBeforeTheSpoolIsReady(name: string, config: AgentConfigInput, body: string, reply: string) {
  describe(name, () => {
    let agent: TestAgent;
    let openGate: () => void = () => undefined;
    let gate: Promise<void> = Promise.resolve();

    before(async () => {
      agent = await startTestAgent(config, {
        spoolOptions: {
          openTempFile: async (path) => {
            await gate;
            return open(path, 'wx');
          },
        },
      });
    });

    after(async () => {
      openGate();
      await agent?.dispose();
    });

    test(`${reply}, the agent keeps running and the connection stays in step`, async () => {
      gate = new Promise((resolve) => (openGate = resolve));
      const device = await openSession(agent.address.port);
      const barrier = await openSession(agent.address.port);
      await startData(device, 'scanner@contoso.com', ['alice@contoso.com']);
      device.write(`${body}.\r\n`);
      assert.equal(await barrier.command('NOOP'), '250 OK');
      openGate();
      assert.deepEqual(await device.read(1), [reply]);
      assert.deepEqual(await listDir(join(agent.config.spool.dir, 'tmp')), []);
      assert.deepEqual(await listDir(join(agent.config.spool.dir, 'queue')), []);
      queuedId(await sendMessage(device, 'scanner@contoso.com', ['alice@contoso.com'], 'Subject: next\r\n\r\nok\r\n'));
      await Promise.all([quit(device), quit(barrier)]);
    });
  });
}

refusedBeforeTheSpoolIsReady(
  'a bare LF refused (bareNewlines: reject) before the spool has opened its temp file',
  { listen: { bareNewlines: 'reject' } },
  'Subject: lf\n\nbody\r\n',
  '550 5.6.0 Message contains a bare CR or LF; line ends must be CRLF',
);

refusedBeforeTheSpoolIsReady(
  'an oversized message refused before the spool has opened its temp file',
  { listen: { maxMessageSize: 1024 } },
  `Subject: big\r\n\r\n${'x'.repeat(4000)}\r\n`,
  '552 5.3.4 Message size exceeds fixed maximum message size',
);
