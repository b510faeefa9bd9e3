import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { sendRaw, startTestAgent, waitForAttempt, type TestAgent } from '../../testbed/helpers/agentHarness.ts';
import { runCli, writeConfig } from '../../testbed/helpers/agentProcess.ts';
import { startExchangeOnlineRig, type ExchangeOnlineRig } from '../../testbed/helpers/exchangeOnlineRig.ts';

describe('seeing the queue and resending a failed message', () => {
  let rig: ExchangeOnlineRig;
  let agent: TestAgent;
  let configFile: string;

  before(async () => {
    rig = await startExchangeOnlineRig();
    agent = await startTestAgent({ upstream: rig.upstream(), retry: { schedule: ['1h'], maxAge: '2d' } });
    configFile = await writeConfig(agent.dir, { spool: { dir: agent.config.spool.dir } }, 'cli.yaml');
  });

  after(async () => {
    await agent?.dispose();
    await rig?.close();
  });

  test('queue lists the failure with its reply; resend delivers only to recipients still owed the message', async () => {
    rig.exo.failNext('rcpt', '550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup');
    const reply = await sendRaw(agent.address.port, 'scanner@contoso.com', ['ops@contoso.com', 'you@contoso.com'], 'Subject: again\r\n\r\nx\r\n');
    const id = /queued as (\S+)$/.exec(reply)?.[1] ?? '';
    const failed = await waitForAttempt(agent, (r) => r.id === id);
    assert.equal(failed.action, 'failed');
    assert.deepEqual(rig.exo.messages.map((m) => m.rcptTo), [['you@contoso.com']]);

    const shown = await runCli(['show', id, '--config', configFile]);
    assert.equal(shown.code, 0, shown.stderr);
    assert.equal(shown.stdout, 'Subject: again\r\n\r\nx\r\n', 'the message as received, alone on stdout');
    assert.match(shown.stderr, new RegExp(`^failed: \\{"id":"${id}",.*"rcptTo":\\["ops@contoso.com","you@contoso.com"\\]`));

    const listing = await runCli(['queue', '--config', configFile]);
    assert.equal(listing.code, 0, listing.stderr);
    assert.match(listing.stdout, new RegExp(`failed: 1\\n  ${id} .* reply="550 5\\.1\\.10 RESOLVER`));

    const resent = await runCli(['resend', id, '--config', configFile]);
    assert.deepEqual([resent.code, resent.stdout], [0, `${id}: back in the queue\n`]);
    await agent.deliveryLoop.rescan();
    const done = await waitForAttempt(agent, (r) => r.id === id);
    assert.deepEqual([done.action, done.attempts], ['delivered', 1]);
    assert.deepEqual(rig.exo.messages.map((m) => m.rcptTo), [['you@contoso.com'], ['ops@contoso.com']], 'you@ did not get it twice');
  });

  test('queue shows the fix for a message held for the operator, not only the raw reply', async () => {
    rig.exo.failNext('mail', '550 5.7.60 SMTP; Client does not have permissions to send as this sender');
    const reply = await sendRaw(agent.address.port, 'scanner@contoso.com', ['you@contoso.com'], 'Subject: held\r\n\r\nx\r\n');
    const id = /queued as (\S+)$/.exec(reply)?.[1] ?? '';
    const held = await waitForAttempt(agent, (r) => r.id === id);
    assert.equal(held.action, 'retry', 'held for the operator and tried again on its schedule');
    const listing = await runCli(['queue', '--config', configFile]);
    assert.equal(listing.code, 0, listing.stderr);
    const line = listing.stdout.split('\n').find((l) => l.includes(id)) ?? '';
    assert.match(line, /last="550 5\.7\.60/);
    assert.match(line, /held for the operator; fix: Add-RecipientPermission -Identity scanner@contoso\.com -AccessRights SendAs -Trustee relay@contoso\.com/);
  });

  test('show of an unknown id says so and exits 1', async () => {
    const result = await runCli(['show', '0000000000-nope', '--config', configFile]);
    assert.deepEqual([result.code, result.stdout, result.stderr], [1, '', '0000000000-nope: no such queued or failed message\n']);
  });

  test('resend of an unknown id says so and exits 1', async () => {
    const result = await runCli(['resend', '0000000000-nope', '--config', configFile]);
    assert.deepEqual([result.code, result.stderr], [1, '0000000000-nope: no such failed message\n']);
  });
});
