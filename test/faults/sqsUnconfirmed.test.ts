import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ReceiveMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import type { PutMetricDataCommand } from '@aws-sdk/client-cloudwatch';
import { TEST_CREDENTIALS, TEST_REGION } from '../../testbed/aws/awsTestEnv.ts';
import { startLocalS3, type LocalS3 } from '../../testbed/aws/localS3.ts';
import { startLocalSqs, type LocalSqs } from '../../testbed/aws/localSqs.ts';
import { startTestAgent, type TestAgent } from '../../testbed/helpers/agentHarness.ts';
import { pollUntil } from '../../testbed/helpers/pollUntil.ts';
import { SqsTap } from '../crash/SqsTap.ts';
import { sendAsDevice } from './faultDevice.ts';

describe('fault: SQS answers a hand-over without confirming it', () => {
  let sqs: LocalSqs;
  let s3: LocalS3;
  let tap: SqsTap;
  let client: SQSClient;
  let agent: TestAgent;

  before(async () => {
    [sqs, s3] = await Promise.all([startLocalSqs(), startLocalS3()]);
    tap = await SqsTap.start(sqs.endpoint);
    client = new SQSClient({ endpoint: tap.endpoint, region: TEST_REGION, credentials: TEST_CREDENTIALS, maxAttempts: 1 });
    agent = await startTestAgent(
      { queue: { kind: 'sqs', sqs: { queueUrl: tap.queueUrl(sqs.queueUrl), bucket: s3.bucket, region: TEST_REGION } } },
      {
        aws: { sqs: client, s3: s3.client, cloudWatch: { send: async (_command: PutMetricDataCommand) => undefined } as never },
        forwarder: { initialBackoffMs: 50, maxBackoffMs: 200 },
      },
    );
  });

  after(async () => {
    await agent?.dispose();
    client?.destroy();
    await tap?.close();
    await Promise.all([sqs?.stop(), s3?.stop()]);
  });

  test('a 200 that lists the entry neither as Successful nor as Failed keeps the message in the spool until SQS really takes it', async () => {
    tap.onNextSendBeforeSqs(async () => 'confirm-nothing');
    const send = await sendAsDevice(agent.address.port, 'unconfirmed hand-over');
    assert.equal(send.code, 250, send.reply);

    await pollUntil(() => agent.logs.records().some((r) => r.msg === 'could not hand to SQS, will retry' && r.err === 'BatchEntryUnconfirmed'), 10_000, 'the unconfirmed entry to be retried');
    await agent.forwarder.whenIdle();
    assert.deepEqual(await agent.spool.committedIds(), []);
    const received = await sqs.client.send(new ReceiveMessageCommand({ QueueUrl: sqs.queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 0 }));
    assert.deepEqual(
      received.Messages?.map((m) => (JSON.parse(m.Body ?? '{}') as { envelope?: { sha256?: string } }).envelope?.sha256),
      [send.sha256],
      'SQS has the message once',
    );
  });
});
