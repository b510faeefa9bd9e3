import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, test } from 'node:test';
import { sendRaw, startTestAgent, waitForAttempt, type TestAgent } from '../../testbed/helpers/agentHarness.ts';
import { startExchangeOnlineRig, type ExchangeOnlineRig } from '../../testbed/helpers/exchangeOnlineRig.ts';

const MESSAGE = 'From: scanner@contoso.com\r\nTo: you@contoso.com\r\nSubject: outcome\r\n\r\nbody\r\n';

/** Sends one message and returns its spool id from the 250 reply. */
async function send(agent: TestAgent, to: string[] = ['you@contoso.com'], from = 'scanner@contoso.com'): Promise<string> {
  const reply = await sendRaw(agent.address.port, from, to, MESSAGE);
  const id = /queued as (\S+)$/.exec(reply)?.[1];
  assert.ok(id, `queued: ${reply}`);
  return id;
}

describe('delivery outcomes against Exchange Online', () => {
  let rig: ExchangeOnlineRig;
  let agent: TestAgent;

  before(async () => {
    rig = await startExchangeOnlineRig();
    agent = await startTestAgent({
      upstream: rig.upstream(),
      retry: { schedule: ['50ms', '100ms'], maxAge: '1h' },
    });
  });

  after(async () => {
    await agent?.dispose();
    await rig?.close();
  });

  beforeEach(() => rig.exo.setDown(false));

  test('a temporary failure (451) is retried and then delivered', async () => {
    rig.exo.failNext('mail', '451 4.7.500 Server busy. Please try again later');
    const id = await send(agent);
    const retry = await waitForAttempt(agent, (r) => r.id === id);
    assert.deepEqual([retry.action, retry.reply], ['retry', '451 4.7.500 Server busy. Please try again later']);
    const done = await waitForAttempt(agent, (r) => r.id === id);
    assert.deepEqual([done.action, done.attempts], ['delivered', 2]);
  });

  test('the upstream down is a transient problem; delivery resumes when it is back', async () => {
    // A fresh agent: the shared one keeps pooled connections open, which "down" does not cut.
    const fresh = await startTestAgent({ upstream: rig.upstream(), retry: { schedule: ['50ms'], maxAge: '1h' } });
    try {
      rig.exo.setDown(true);
      const id = await send(fresh);
      const retry = await waitForAttempt(fresh, (r) => r.id === id);
      assert.equal(retry.action, 'retry');
      assert.equal((await fresh.spool.listQueued()).find((q) => q.envelope.id === id)?.state?.attempts, 1);
      rig.exo.setDown(false);
      const done = await waitForAttempt(fresh, (r) => r.id === id && r.action !== 'retry');
      assert.equal(done.action, 'delivered');
    } finally {
      rig.exo.setDown(false);
      await fresh.dispose();
    }
  });

  test('throttling (432 4.3.2) holds delivery and retries', async () => {
    rig.exo.failNext('data', '432 4.3.2 STOREDRV.ClientSubmit; sender thread limit exceeded.');
    const id = await send(agent);
    const retry = await waitForAttempt(agent, (r) => r.id === id);
    assert.deepEqual([retry.action, retry.reply], ['retry', '432 4.3.2 STOREDRV.ClientSubmit; sender thread limit exceeded.']);
    assert.ok(agent.logs.records().some((r) => r.msg === 'upstream is throttling the mailbox, holding its deliveries' && r.messageId === id));
    const done = await waitForAttempt(agent, (r) => r.id === id);
    assert.equal(done.action, 'delivered');
  });

  test('a permanent failure (552) moves the message to the failed area with the reply', async () => {
    rig.exo.failNext('data', '552 5.3.4 Message size exceeds fixed maximum message size');
    const id = await send(agent);
    const failed = await waitForAttempt(agent, (r) => r.id === id);
    assert.deepEqual([failed.action, failed.attempts], ['failed', 1]);
    const record = (await agent.spool.listFailed()).find((f) => f.envelope.id === id);
    assert.equal(record?.failure.reply, '552 5.3.4 Message size exceeds fixed maximum message size');
    assert.equal((await agent.spool.listQueued()).some((q) => q.envelope.id === id), false);
  });

  test('a refused recipient is recorded while the others get the message once', async () => {
    const before = rig.exo.messages.length;
    const id = await send(agent, ['you@contoso.com', 'nobody@contoso.com']);
    const settled = await waitForAttempt(agent, (r) => r.id === id);
    assert.equal(settled.action, 'failed');
    const [message] = (await rig.exo.waitForMessages(before + 1)).slice(before);
    assert.deepEqual(message?.rcptTo, ['you@contoso.com']);
    const record = (await agent.spool.listFailed()).find((f) => f.envelope.id === id);
    assert.deepEqual(record?.failure.state.deliveredRcpts, ['you@contoso.com']);
    assert.deepEqual(record?.failure.state.rejectedRcpts.map((r) => r.rcpt), ['nobody@contoso.com']);
    assert.match(record?.failure.state.rejectedRcpts[0]?.reply ?? '', /^550 5\.1\.10 RESOLVER\.ADR\.RecipientNotFound/);
    assert.equal(rig.exo.messages.length, before + 1, 'sent once');
  });

  test('a transient problem past retry.maxAge ends in the failed area', async () => {
    const young = await startTestAgent({ upstream: rig.upstream(), retry: { schedule: ['50ms'], maxAge: '150ms' } });
    try {
      rig.exo.setDown(true);
      const id = await send(young);
      const failed = await waitForAttempt(young, (r) => r.id === id && r.action !== 'retry');
      assert.equal(failed.action, 'failed');
      assert.equal((await young.spool.listFailed())[0]?.envelope.id, id);
    } finally {
      rig.exo.setDown(false);
      await young.dispose();
    }
  });
});

describe('problems only the operator can fix', () => {
  let rig: ExchangeOnlineRig;

  before(async () => {
    rig = await startExchangeOnlineRig();
  });

  after(async () => rig?.close());

  test('a refused client secret keeps the mail and logs the fix', async () => {
    const upstream = rig.upstream();
    const agent = await startTestAgent({
      upstream: { ...upstream, auth: { ...(upstream.auth as object), clientSecret: 'wrong-secret' } as never },
      retry: { schedule: ['50ms'], maxAge: '100ms' },
    });
    try {
      const id = await send(agent);
      const first = await waitForAttempt(agent, (r) => r.id === id);
      assert.equal(first.action, 'retry');
      // Past maxAge a needs-operator problem is still kept, unlike a transient one.
      const second = await waitForAttempt(agent, (r) => r.id === id);
      assert.equal(second.action, 'retry');
      const log = agent.logs.records().find((r) => r.msg === 'delivery needs the operator' && r.messageId === id);
      assert.equal(log?.kind, 'config');
      assert.match(String(log?.reason), /token|AADSTS|client/i);
      assert.equal(rig.exo.messages.length, 0);
      assert.ok(!agent.logs.text.includes('wrong-secret'));
    } finally {
      await agent.dispose();
    }
  });

  test('send-as denied (550 5.7.60) is kept and the log names Add-RecipientPermission', async () => {
    const agent = await startTestAgent({
      upstream: rig.upstream(),
      clients: [{ name: 'copier', address: '127.0.0.1', sendAs: 'copier@contoso.com' }],
      retry: { schedule: ['1h'], maxAge: '2d' },
    });
    try {
      const id = await send(agent);
      const first = await waitForAttempt(agent, (r) => r.id === id);
      assert.deepEqual([first.action, first.reply], ['retry', '550 5.7.60 SMTP; Client does not have permissions to send as this sender']);
      const log = agent.logs.records().find((r) => r.msg === 'delivery needs the operator' && r.messageId === id);
      assert.match(String(log?.operatorAction), /Add-RecipientPermission -Identity copier@contoso\.com -AccessRights SendAs -Trustee/);
      const queued = (await agent.spool.listQueued()).find((q) => q.envelope.id === id);
      assert.ok(queued?.state?.nextAttemptAt, 'kept in the queue with a next attempt');
    } finally {
      await agent.dispose();
    }
  });
});
