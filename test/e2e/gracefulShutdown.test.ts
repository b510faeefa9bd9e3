import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import { test } from 'node:test';
import { startTestAgent } from '../../testbed/helpers/agentHarness.ts';
import { RawSmtpClient } from '../../testbed/helpers/rawSmtpClient.ts';

test('shutdown answers new connections with 421 and lets the message in flight finish', async () => {
  const agent = await startTestAgent();
  try {
    const device = await RawSmtpClient.open(agent.address.port);
    assert.match((await device.read())[0] ?? '', /^220 /);
    assert.match(await device.command('EHLO printer'), /^250 /);
    assert.match(await device.command('MAIL FROM:<scanner@contoso.com>'), /^250 /);
    assert.match(await device.command('RCPT TO:<you@contoso.com>'), /^250 /);
    assert.match(await device.command('DATA'), /^354 /);
    device.write('Subject: in flight\r\n\r\nfirst half\r\n');

    const stopping = agent.stop(10_000);
    const late = await RawSmtpClient.open(agent.address.port);
    assert.equal((await late.read())[0], '421 4.3.2 Service shutting down, try again later');
    await late.whenClosed();

    device.write('second half\r\n.\r\n');
    const [reply] = await device.read();
    assert.match(reply ?? '', /^250 2\.0\.0 Ok: queued as \S+$/);
    device.close();
    await stopping;
    const outbox = await readdir(agent.config.outbox.dir).catch(() => [] as string[]);
    const queued = await readdir(`${agent.config.spool.dir}/queue`);
    assert.equal(outbox.filter((n) => n.endsWith('.eml')).length + queued.filter((n) => n.endsWith('.eml')).length, 1, 'the acknowledged message is kept');
  } finally {
    await agent.dispose();
  }
});
