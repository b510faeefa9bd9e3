import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { GetQueueAttributesCommand } from '@aws-sdk/client-sqs';
import type { RunningSqsPoller } from '../../functions/sqs-poller/startSqsPoller.ts';
import { TEST_REGION } from '../../testbed/aws/awsTestEnv.ts';
import { startLocalDynamo, type LocalDynamo } from '../../testbed/aws/localDynamo.ts';
import { startLocalS3, type LocalS3 } from '../../testbed/aws/localS3.ts';
import { startLocalSqs, type LocalSqs } from '../../testbed/aws/localSqs.ts';
import type { LogCapture, TestAgent } from '../../testbed/helpers/agentHarness.ts';
import { startCloudPipeline } from '../../testbed/helpers/cloudPipeline.ts';
import { startExchangeOnlineRig, type ExchangeOnlineRig } from '../../testbed/helpers/exchangeOnlineRig.ts';
import { pollUntil } from '../../testbed/helpers/pollUntil.ts';
import { assertDeliveredOnce } from './assertDeliveredOnce.ts';
import { sendAsDevice, type DeviceSend } from './faultDevice.ts';

describe('fault: SQS unreachable in cloud mode, then back', () => {
  let rig: ExchangeOnlineRig;
  let sqs: LocalSqs;
  let s3: LocalS3;
  let dynamo: LocalDynamo;
  let agent: TestAgent;
  let worker: RunningSqsPoller;
  let workerLogs: LogCapture;

  before(async () => {
    [rig, sqs, s3, dynamo] = await Promise.all([startExchangeOnlineRig(), startLocalSqs({ visibilityTimeout: 30, maxReceiveCount: 10 }), startLocalS3(), startLocalDynamo()]);
    const sqsBlock = { queueUrl: sqs.queueUrl, bucket: s3.bucket, region: TEST_REGION, inlineMaxBytes: '16KB' };
    ({ agent, worker, workerLogs } = await startCloudPipeline({ aws: { sqs, s3, dynamo }, sqsBlock, upstream: rig.upstream(), maxBackoffMs: 400 }));
  });

  after(async () => {
    await worker?.stop();
    await agent?.dispose();
    await Promise.all([rig?.close(), sqs?.stop(), s3?.stop(), dynamo?.stop()]);
  });

  test('devices keep getting 250 while SQS is down, the mail waits in the spool, and it is handed over and delivered once SQS is back', async () => {
    const sends: DeviceSend[] = [];
    // Traffic before the outage, so the worker is polling and the agent has forwarded already.
    sends.push(await sendAsDevice(agent.address.port, 'sqs before', 300));
    await rig.exo.waitForMessages(1, 15_000);

    await sqs.goDown();
    // Small ones travel inline, the 40 KB ones through S3 (still up): both wait for SQS.
    for (let i = 0; i < 6; i++) sends.push(await sendAsDevice(agent.address.port, `sqs outage ${i}`, i % 2 === 0 ? 300 : 40_000));
    for (const send of sends) assert.equal(send.code, 250, `${send.subject}: ${send.reply}`);
    await pollUntil(
      () => agent.logs.records().filter((r) => r.msg === 'AWS unreachable or refusing, mail stays in the spool').length >= 2,
      15_000,
      'the forwarder to fail twice',
    );
    await pollUntil(() => workerLogs.records().some((r) => r.msg === 'could not read the queue, retrying'), 15_000, 'the worker to notice the outage');
    assert.equal((await agent.spool.committedIds()).length, 6, 'all six wait in the spool');
    assert.equal(rig.exo.messages.length, 1);

    await sqs.restart();
    await rig.exo.waitForMessages(sends.length, 30_000);
    await agent.forwarder.whenIdle();
    assertDeliveredOnce(rig.exo.messages, sends);
    assert.deepEqual(await agent.spool.committedIds(), [], 'the spool is empty');
    const { Attributes } = await sqs.client.send(new GetQueueAttributesCommand({ QueueUrl: sqs.dlqUrl, AttributeNames: ['ApproximateNumberOfMessages'] }));
    assert.equal(Attributes?.ApproximateNumberOfMessages, '0', 'nothing was dead-lettered');
  });
});
