import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { GetQueueAttributesCommand, ReceiveMessageCommand, SendMessageCommand, type Message } from '@aws-sdk/client-sqs';
import type { PutMetricDataCommand } from '@aws-sdk/client-cloudwatch';
import { DLQ_ATTRIBUTES } from '../../contract/cloudResources.ts';
import { inlineQueueMessage, serializeQueueMessage } from '../../contract/queueMessage.ts';
import type { MessageEnvelope } from '../../contract/messageEnvelope.ts';
import type { RunningSqsPoller } from '../../functions/sqs-poller/startSqsPoller.ts';
import { awsTestEnv } from '../../testbed/aws/awsTestEnv.ts';
import type { LocalDynamo } from '../../testbed/aws/localDynamo.ts';
import type { LocalS3 } from '../../testbed/aws/localS3.ts';
import type { LocalSecretsManager } from '../../testbed/aws/localSecretsManager.ts';
import type { LocalSqs } from '../../testbed/aws/localSqs.ts';
import { makeTempDir, sendRaw, type LogCapture, type TestAgent } from '../../testbed/helpers/agentHarness.ts';
import { startCloudPipeline } from '../../testbed/helpers/cloudPipeline.ts';
import type { ExchangeOnlineRig } from '../../testbed/helpers/exchangeOnlineRig.ts';
import { pollUntil } from '../../testbed/helpers/pollUntil.ts';
import { startCloudRig, type CloudRig } from '../../testbed/helpers/cloudRig.ts';

const sha256 = (bytes: Buffer | string) => createHash('sha256').update(bytes).digest('hex');

describe('cloud path: device → agent → SQS (S3) → worker → Exchange Online', () => {
  let cloud: CloudRig | undefined;
  let rig: ExchangeOnlineRig;
  let sqs: LocalSqs;
  let s3: LocalS3;
  let dynamo: LocalDynamo;
  let secrets: LocalSecretsManager;
  let agent: TestAgent;
  let worker: RunningSqsPoller;
  let workerLogs: LogCapture;
  const heartbeats: PutMetricDataCommand[] = [];

  before(async () => {
    cloud = await startCloudRig();
    ({ rig, sqs, s3, dynamo, secrets } = cloud);
    // The worker's Secrets Manager client comes from the SDK's default chain, as in production.
    Object.assign(process.env, awsTestEnv({ sqs: sqs.endpoint, s3: s3.endpoint, dynamodb: dynamo.endpoint, secretsManager: secrets.endpoint }));
    const arn = cloud.secretArn;
    const sqsBlock = { queueUrl: sqs.queueUrl, bucket: s3.bucket, region: 'us-east-1', inlineMaxBytes: '700KiB' };
    ({ agent, worker, workerLogs } = await startCloudPipeline({
      aws: { sqs, s3, dynamo },
      sqsBlock,
      upstream: { secretArn: arn },
      maxBackoffMs: 200,
      onHeartbeat: (command) => heartbeats.push(command),
    }));
  });

  after(async () => {
    await worker?.stop();
    await agent?.dispose();
    await cloud?.stop();
  });

  test('a small message travels inline and arrives with the same bytes', async () => {
    const raw = 'From: scanner@contoso.com\r\nSubject: inline\r\n\r\nsmall scan\r\n';
    const before = rig.exo.messages.length;
    await sendRaw(agent.address.port, 'scanner@contoso.com', ['you@contoso.com'], raw);
    const [message] = (await rig.exo.waitForMessages(before + 1, 15_000)).slice(before);
    assert.equal(message?.sha256, sha256(raw));
    assert.equal(message?.auth.method, 'XOAUTH2');
    await agent.forwarder.whenIdle();
    assert.deepEqual(await agent.spool.committedIds(), [], 'the agent keeps nothing once SQS has it');
  });

  test('a 600 KB scan travels inline on a queue that takes 1 MiB (the forwarder asks the queue), not by S3', async () => {
    const pdf = randomBytes(440 * 1024).toString('base64').replace(/.{76}/g, '$&\r\n');
    const raw = `From: scanner@contoso.com\r\nSubject: mid-size scan\r\n\r\n${pdf}\r\n`;
    assert.ok(raw.length > 600 * 1024 && raw.length < 700 * 1024);
    const before = rig.exo.messages.length;
    const mark = agent.logs.records().length;
    await sendRaw(agent.address.port, 'scanner@contoso.com', ['you@contoso.com'], raw);
    const [message] = (await rig.exo.waitForMessages(before + 1, 30_000)).slice(before);
    assert.equal(message?.sha256, sha256(raw));
    // The worker can deliver before the forwarder has logged SQS's answer.
    const handed = () => agent.logs.records().slice(mark).filter((r) => r.msg === 'handed to SQS');
    await pollUntil(() => handed().length > 0, 10_000, 'the forwarder logs the hand-over');
    assert.deepEqual(handed().map((r) => r.via), ['inline']);
  });

  test('a 20 MB scan goes through S3 and arrives whole; the S3 copy is removed after delivery', async () => {
    const pdf = randomBytes(15 * 1024 * 1024).toString('base64').replace(/.{76}/g, '$&\r\n');
    const raw = `From: scanner@contoso.com\r\nSubject: big scan\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n${pdf}\r\n`;
    assert.ok(raw.length > 20 * 1024 * 1024);
    const before = rig.exo.messages.length;
    await sendRaw(agent.address.port, 'scanner@contoso.com', ['you@contoso.com'], raw);
    const [message] = (await rig.exo.waitForMessages(before + 1, 60_000)).slice(before);
    assert.equal(message?.sha256, sha256(raw));
    // The worker deletes the S3 copy right after recording the delivery.
    await pollUntil(async () => ((await s3.client.send(new ListObjectsV2Command({ Bucket: s3.bucket }))).KeyCount ?? 0) === 0, 10_000, 'the S3 copy deleted');
  });

  test('a message SQS delivers twice is sent once', async () => {
    const body = Buffer.from('Subject: twice\r\n\r\nonce only\r\n');
    const envelope: MessageEnvelope = {
      id: '0duplicate-test-0001',
      receivedAt: new Date().toISOString(),
      client: { name: 'test', ip: '127.0.0.1' },
      helo: 'test',
      mailFrom: 'scanner@contoso.com',
      rcptTo: ['you@contoso.com'],
      size: body.length,
      sha256: sha256(body),
    };
    const text = serializeQueueMessage(inlineQueueMessage(envelope, body));
    const before = rig.exo.messages.length;
    await sqs.client.send(new SendMessageCommand({ QueueUrl: sqs.queueUrl, MessageBody: text }));
    await rig.exo.waitForMessages(before + 1, 15_000);
    await sqs.client.send(new SendMessageCommand({ QueueUrl: sqs.queueUrl, MessageBody: text }));
    await pollUntil(() => workerLogs.records().some((r) => r.msg === 'already delivered, not sent again' && r.messageId === envelope.id), 15_000, 'the worker skipping the redelivery');
    assert.equal(rig.exo.messages.filter((m) => m.raw.includes('once only')).length, 1);
  });

  test('a permanent failure ends in the dead-letter queue with its reason', async () => {
    rig.exo.failNext('data', '552 5.3.4 Message size exceeds fixed maximum message size');
    const raw = 'Subject: refused\r\n\r\nthis one fails\r\n';
    await sendRaw(agent.address.port, 'scanner@contoso.com', ['you@contoso.com'], raw);
    let received: Message | undefined;
    await pollUntil(
      async () => {
        received = (await sqs.client.send(new ReceiveMessageCommand({ QueueUrl: sqs.dlqUrl, MessageAttributeNames: ['All'], WaitTimeSeconds: 1 }))).Messages?.[0];
        return received !== undefined;
      },
      15_000,
      'the message in the dead-letter queue',
    );
    assert.ok(received);
    assert.equal(received.MessageAttributes?.[DLQ_ATTRIBUTES.reply]?.StringValue, '552 5.3.4 Message size exceeds fixed maximum message size');
    assert.equal(received.MessageAttributes?.[DLQ_ATTRIBUTES.kind]?.StringValue, 'permanent');
    assert.match(received.Body ?? '', /"schemaVersion":1/);
  });

  test('SQS down for a while: the agent keeps accepting and forwards everything later', async () => {
    await sqs.goDown();
    const before = rig.exo.messages.length;
    const replies = [];
    for (let i = 0; i < 3; i++) {
      replies.push(await sendRaw(agent.address.port, 'scanner@contoso.com', ['you@contoso.com'], `Subject: outage ${i}\r\n\r\nkept\r\n`));
    }
    for (const reply of replies) assert.match(reply, /^250 2\.0\.0 Ok: queued as /);
    await pollUntil(() => agent.logs.records().some((r) => r.msg === 'AWS unreachable or refusing, mail stays in the spool'), 15_000, 'the agent logging the outage');
    assert.equal((await agent.spool.committedIds()).length, 3, 'all three wait in the spool');
    await sqs.restart();
    const arrived = (await rig.exo.waitForMessages(before + 3, 30_000)).slice(before);
    assert.deepEqual(arrived.map((m) => /Subject: (outage \d)/.exec(m.raw.toString())?.[1]).sort(), ['outage 0', 'outage 1', 'outage 2']);
  });

  test('the agent publishes a heartbeat with its spool depth', () => {
    const first = heartbeats[0]?.input;
    assert.equal(first?.Namespace, 'Smarthost/Agent');
    assert.deepEqual(first?.MetricData?.map((m) => m.MetricName), ['Heartbeat', 'SpoolDepth']);
  });

  test('nothing is left on the queue once everything is delivered', async () => {
    await agent.forwarder.whenIdle();
    const counts = async () => {
      const { Attributes } = await sqs.client.send(new GetQueueAttributesCommand({ QueueUrl: sqs.queueUrl, AttributeNames: ['All'] }));
      return Number(Attributes?.ApproximateNumberOfMessages) + Number(Attributes?.ApproximateNumberOfMessagesNotVisible);
    };
    await pollUntil(async () => (await counts()) === 0, 10_000, 'an empty queue');
  });
});
