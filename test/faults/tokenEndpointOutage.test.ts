import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startTestAgent, type TestAgent } from '../../testbed/helpers/agentHarness.ts';
import { startExchangeOnlineRig, type ExchangeOnlineRig } from '../../testbed/helpers/exchangeOnlineRig.ts';
import { assertDeliveredOnce } from './assertDeliveredOnce.ts';
import { AttemptLog } from './AttemptLog.ts';
import { sendAsDevice, type DeviceSend } from './faultDevice.ts';

describe('fault: the Entra ID token endpoint unreachable, then back', () => {
  let rig: ExchangeOnlineRig;
  let agent: TestAgent;
  let attempts: AttemptLog;

  before(async () => {
    rig = await startExchangeOnlineRig();
    // Down from the start, so the agent has no cached token (a cached one outlives a short outage: see the last test).
    rig.tokens.setDown(true);
    agent = await startTestAgent({ upstream: rig.upstream(), retry: { schedule: ['100ms', '200ms'], maxAge: '1h' } });
    attempts = new AttemptLog(agent.deliveryLoop);
  });

  after(async () => {
    await agent?.dispose();
    await rig?.close();
  });

  test('without a token the agent still accepts mail, retries as a passing problem, and delivers once the endpoint is back', async () => {
    const sends: DeviceSend[] = [];
    for (let i = 0; i < 5; i++) sends.push(await sendAsDevice(agent.address.port, `no token ${i}`));
    for (const send of sends) assert.equal(send.code, 250, send.reply);

    await attempts.untilRetried(
      sends.map((s) => s.queueId as string),
      2,
    );
    assert.equal(rig.exo.messages.length, 0);
    assert.equal(rig.exo.connections, 0, 'no connection to Exchange Online without a token');
    const failures = agent.logs.records().filter((r) => r.msg === 'delivery attempt failed');
    assert.ok(failures.length > 0 && failures.every((r) => r.kind === 'transient'), 'an unreachable authority is transient, not an operator problem');

    rig.tokens.setDown(false);
    await rig.exo.waitForMessages(sends.length, 15_000);
    await agent.deliveryLoop.whenIdle();
    assertDeliveredOnce(rig.exo.messages, sends);
    assert.deepEqual(await agent.spool.committedIds(), []);
    assert.deepEqual(await agent.spool.listFailed(), []);
  });

  test('with a token cached, an outage of the endpoint does not hold up delivery', async () => {
    const before = rig.exo.messages.length;
    const requests = rig.tokens.tokenRequests;
    rig.tokens.setDown(true);
    const sends: DeviceSend[] = [];
    for (let i = 0; i < 3; i++) sends.push(await sendAsDevice(agent.address.port, `cached token ${i}`));
    await rig.exo.waitForMessages(before + sends.length, 15_000);
    assertDeliveredOnce(rig.exo.messages.slice(before), sends);
    assert.equal(rig.tokens.tokenRequests, requests, 'no token request was needed');
    rig.tokens.setDown(false);
  });
});
