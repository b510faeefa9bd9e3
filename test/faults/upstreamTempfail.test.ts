import assert from 'node:assert/strict';
import { afterEach, describe, test } from 'node:test';
import { startTestAgent, type TestAgent } from '../../testbed/helpers/agentHarness.ts';
import { startExchangeOnlineRig, type ExchangeOnlineRig } from '../../testbed/helpers/exchangeOnlineRig.ts';
import type { FaultStage } from '../../testbed/fakes/fakeExchangeOnline.ts';
import { assertDeliveredOnce } from './assertDeliveredOnce.ts';
import { AttemptLog } from './AttemptLog.ts';
import { sendAsDevice, type DeviceSend } from './faultDevice.ts';

const RETRY = { schedule: ['100ms', '200ms'], maxAge: '1h' };

describe('fault: storms of temporary failures and throttling from Exchange Online', () => {
  let rig: ExchangeOnlineRig | undefined;
  let agent: TestAgent | undefined;

  afterEach(async () => {
    await agent?.dispose();
    await rig?.close();
    agent = undefined;
    rig = undefined;
  });

  async function sendBatch(port: number, name: string, count: number): Promise<DeviceSend[]> {
    const sends = await Promise.all(Array.from({ length: count }, (_, i) => sendAsDevice(port, `${name} ${i}`)));
    for (const send of sends) assert.equal(send.code, 250, `${send.subject}: ${send.reply}`);
    return sends;
  }

  test('a storm of 4xx at every stage of the dialogue (421 greeting, 451 MAIL, RCPT and DATA) is retried through; each message arrives once', async () => {
    rig = await startExchangeOnlineRig();
    agent = await startTestAgent({ upstream: rig.upstream(), retry: RETRY });
    const attempts = new AttemptLog(agent.deliveryLoop);
    const storm: [FaultStage, string, number][] = [
      ['connect', '421 4.7.0 Temporary server error. Please try again later. PRX5', 3],
      ['mail', '451 4.7.500 Server busy. Please try again later.', 4],
      ['rcpt', '451 4.3.0 Mail server temporarily rejected message.', 4],
      ['data', '451 4.4.397 Error queuing message. Please try again later.', 5],
    ];
    for (const [stage, reply, times] of storm) rig.exo.failNext(stage, reply, times);

    const sends = await sendBatch(agent.address.port, 'tempfail', 8);
    await rig.exo.waitForMessages(sends.length, 30_000);
    await agent.deliveryLoop.whenIdle();

    assertDeliveredOnce(rig.exo.messages, sends);
    const replies = attempts.retryReplies();
    for (const [, reply] of storm.slice(1)) assert.ok(replies.includes(reply), `retried after "${reply}"`);
    assert.ok(rig.exo.errorReplies.length >= 13, `the storm happened (${rig.exo.errorReplies.length} error replies)`);
    assert.deepEqual(await agent.spool.committedIds(), []);
    assert.deepEqual(await agent.spool.listFailed(), [], 'no temporary failure was taken for a permanent one');
  });

  test('a storm of 432 4.3.2 throttling replies holds deliveries and then lets everything through', async () => {
    rig = await startExchangeOnlineRig();
    agent = await startTestAgent({ upstream: rig.upstream(), retry: RETRY });
    rig.exo.failNext('data', '432 4.3.2 STOREDRV.ClientSubmit; sender thread limit exceeded.', 10);
    rig.exo.failNext('auth', '432 4.3.2 Concurrent connections limit exceeded.', 3);

    const sends = await sendBatch(agent.address.port, 'throttled', 8);
    await rig.exo.waitForMessages(sends.length, 30_000);
    await agent.deliveryLoop.whenIdle();

    assertDeliveredOnce(rig.exo.messages, sends);
    assert.ok(rig.exo.throttled >= 13, `every scripted 432 was sent (${rig.exo.throttled})`);
    assert.ok(agent.logs.records().some((r) => r.msg === 'upstream is throttling the mailbox, holding its deliveries'), 'the agent held deliveries');
    assert.deepEqual(await agent.spool.committedIds(), []);
    assert.deepEqual(await agent.spool.listFailed(), []);
  });

  test('a mailbox that allows fewer sessions than the agent opens answers 432 at AUTH; everything still arrives once', async () => {
    rig = await startExchangeOnlineRig({ maxConnectionsPerMailbox: 1 });
    agent = await startTestAgent({ upstream: rig.upstream({ rateLimit: { perMinute: 1000, connections: 3 } }), retry: RETRY });

    const sends = await sendBatch(agent.address.port, 'over the session limit', 9);
    await rig.exo.waitForMessages(sends.length, 30_000);
    await agent.deliveryLoop.whenIdle();

    assertDeliveredOnce(rig.exo.messages, sends);
    assert.ok(rig.exo.throttled > 0, 'the session limit was hit');
    assert.equal(rig.exo.maxConcurrentSessionsPerMailbox, 1);
    assert.deepEqual(await agent.spool.committedIds(), []);
    assert.deepEqual(await agent.spool.listFailed(), []);
  });
});
