import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startTestAgent, type TestAgent } from '../../testbed/helpers/agentHarness.ts';
import { startExchangeOnlineRig, type ExchangeOnlineRig } from '../../testbed/helpers/exchangeOnlineRig.ts';
import { assertDeliveredOnce } from './assertDeliveredOnce.ts';
import { AttemptLog } from './AttemptLog.ts';
import { sendAsDevice } from './faultDevice.ts';

describe('fault: Exchange Online unreachable for a while, then back', () => {
  let rig: ExchangeOnlineRig;
  let agent: TestAgent;
  let attempts: AttemptLog;

  before(async () => {
    rig = await startExchangeOnlineRig();
    // Down before the agent's first delivery: "down" refuses new connections and an agent with
    // pooled sessions open would not notice. Minutes in production, seconds here: the retry
    // schedule is in milliseconds and the outage lasts until every message has been retried.
    rig.exo.setDown(true);
    agent = await startTestAgent({ upstream: rig.upstream(), retry: { schedule: ['100ms', '200ms'], maxAge: '1h' } });
    attempts = new AttemptLog(agent.deliveryLoop);
  });

  after(async () => {
    await agent?.dispose();
    await rig?.close();
  });

  test('devices keep getting 250, the agent keeps retrying, and once the upstream is back everything arrives once, without a restart', async () => {
    const sends = [];
    for (let i = 0; i < 5; i++) sends.push(await sendAsDevice(agent.address.port, `outage ${i}`));
    for (const send of sends) assert.match(send.reply, /^250 2\.0\.0 Ok: queued as /, send.subject);

    const ids = sends.map((s) => s.queueId as string);
    await attempts.untilRetried(ids, 2);
    assert.equal(rig.exo.messages.length, 0, 'nothing got through the outage');
    assert.ok(rig.exo.droppedConnections >= 2, `connections were refused (${rig.exo.droppedConnections})`);
    assert.deepEqual((await agent.spool.committedIds()).sort(), [...ids].sort(), 'every message waits in the spool');
    // More mail while the upstream is still down is accepted as well.
    sends.push(await sendAsDevice(agent.address.port, 'outage late'));
    assert.equal(sends.at(-1)?.code, 250);

    rig.exo.setDown(false);
    await rig.exo.waitForMessages(sends.length, 15_000);
    await agent.deliveryLoop.whenIdle();
    assertDeliveredOnce(rig.exo.messages, sends);
    assert.deepEqual(await agent.spool.committedIds(), [], 'the spool is empty');
    assert.deepEqual(await agent.spool.listFailed(), [], 'nothing was given up on');
  });
});
