import assert from 'node:assert/strict';
import { openFd } from '../../edge-agent/spool/spoolFile.ts';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { AgentConfigInput } from '../../edge-agent/config/agentConfigSchema.ts';
import { startTestAgent, type TestAgent } from '../../testbed/helpers/agentHarness.ts';
import { listDir } from './helpers/messageBytes.ts';
import { openSession, queuedId, quit, sendMessage, startData } from './helpers/smtpSession.ts';

/**
 * A refusal decided while the body is read (size, line ends) must come before the spool touches
 * the disk: a small body is held in memory until it is complete, so a refused one never opens a
 * file. The session stays in step and the next message is stored.
 */
function refusedBeforeAnyFile(name: string, config: AgentConfigInput, body: string, reply: string) {
  describe(name, () => {
    let agent: TestAgent;
    const opened: string[] = [];

    before(async () => {
      agent = await startTestAgent(config, {
        spoolOptions: {
          openTempFile: (path) => {
            opened.push(path);
            return openFd(path, 'wx');
          },
        },
      });
    });

    after(async () => {
      await agent?.dispose();
    });

    test(`${reply}, with no file opened; the agent keeps running and the connection stays in step`, async () => {
      const device = await openSession(agent.address.port);
      await startData(device, 'scanner@contoso.com', ['alice@contoso.com']);
      device.write(`${body}.\r\n`);
      assert.deepEqual(await device.read(1), [reply]);
      assert.deepEqual(opened, [], 'the refused message never reached the disk');
      assert.deepEqual(await listDir(join(agent.config.spool.dir, 'tmp')), []);
      assert.deepEqual(await listDir(join(agent.config.spool.dir, 'queue')), []);
      queuedId(await sendMessage(device, 'scanner@contoso.com', ['alice@contoso.com'], 'Subject: next\r\n\r\nok\r\n'));
      assert.equal(opened.length, 1);
      await quit(device);
    });
  });
}

refusedBeforeAnyFile(
  'a bare LF refused (bareNewlines: reject)',
  { listen: { bareNewlines: 'reject' } },
  'Subject: lf\n\nbody\r\n',
  '550 5.6.0 Message contains a bare CR or LF; line ends must be CRLF',
);

refusedBeforeAnyFile(
  'an oversized message refused',
  { listen: { maxMessageSize: 1024 } },
  `Subject: big\r\n\r\n${'x'.repeat(4000)}\r\n`,
  '552 5.3.4 Message size exceeds fixed maximum message size',
);
