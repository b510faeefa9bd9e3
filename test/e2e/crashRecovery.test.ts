import assert from 'node:assert/strict';
import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { makeTempDir, sendRaw } from '../../testbed/helpers/agentHarness.ts';
import { startAgentProcess, writeConfig } from '../../testbed/helpers/agentProcess.ts';
import { startExchangeOnlineRig, type ExchangeOnlineRig } from '../../testbed/helpers/exchangeOnlineRig.ts';

describe('kill -9 between the 250 and delivery', () => {
  let rig: ExchangeOnlineRig;
  let dir: string;

  before(async () => {
    rig = await startExchangeOnlineRig();
    dir = await makeTempDir();
  });

  after(async () => {
    await rig?.close();
    await rm(dir, { recursive: true, force: true });
  });

  test('the message is delivered exactly once after a restart', async () => {
    const config = await writeConfig(dir, {
      listen: { host: '127.0.0.1', port: 0 },
      spool: { dir: join(dir, 'spool') },
      upstream: rig.upstream(),
      retry: { schedule: ['100ms'], maxAge: '1h' },
      log: { level: 'info' },
    });
    // Upstream unreachable: the agent can only hold the message.
    rig.exo.setDown(true);
    const first = await startAgentProcess(config);
    const reply = await sendRaw(first.port, 'scanner@contoso.com', ['you@contoso.com'], 'Subject: survive\r\n\r\nkept across a crash\r\n');
    const id = /queued as (\S+)$/.exec(reply)?.[1];
    assert.ok(id, reply);
    first.child.kill('SIGKILL');
    assert.equal(await first.exited, 'SIGKILL');
    assert.equal(rig.exo.messages.length, 0);

    rig.exo.setDown(false);
    const second = await startAgentProcess(config);
    const [message] = await rig.exo.waitForMessages(1, 15_000);
    assert.match(message?.raw.toString('latin1') ?? '', /kept across a crash/);
    // A graceful stop lets the delivery in flight record its outcome before the process exits.
    const queue = join(dir, 'spool', 'queue');
    second.child.kill('SIGTERM');
    assert.equal(await second.exited, 0, 'SIGTERM is a clean exit');
    assert.deepEqual(await readdir(queue), [], 'nothing left in the queue');
    assert.equal(rig.exo.messages.length, 1, 'delivered exactly once');
    assert.ok(second.lines.some((line) => line.includes('"delivered"') && line.includes(id)));
  });
});
