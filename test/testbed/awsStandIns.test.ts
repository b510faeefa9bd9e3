import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { ConditionalCheckFailedException, GetItemCommand, PutItemCommand } from '@aws-sdk/client-dynamodb';
import { GetObjectCommand, HeadObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { GetSecretValueCommand, PutSecretValueCommand, ResourceNotFoundException } from '@aws-sdk/client-secrets-manager';
import { ChangeMessageVisibilityCommand, DeleteMessageCommand, GetQueueAttributesCommand, ReceiveMessageCommand, SendMessageCommand, type Message } from '@aws-sdk/client-sqs';
import { Upload } from '@aws-sdk/lib-storage';
import { LEDGER_KEY } from '../../contract/cloudResources.ts';
import { UNREACHABLE_ENDPOINT, awsTestEnv, childProcessEnv } from '../../testbed/aws/awsTestEnv.ts';
import { startLocalDynamo, type LocalDynamo } from '../../testbed/aws/localDynamo.ts';
import { startLocalS3, type LocalS3 } from '../../testbed/aws/localS3.ts';
import { startLocalSecretsManager, type LocalSecretsManager } from '../../testbed/aws/localSecretsManager.ts';
import { startLocalSqs, type LocalSqs } from '../../testbed/aws/localSqs.ts';

const MIB = 1024 * 1024;

async function sha256Of(stream: AsyncIterable<Uint8Array>): Promise<{ sha256: string; bytes: number }> {
  const hash = createHash('sha256');
  let bytes = 0;
  for await (const chunk of stream) {
    hash.update(chunk);
    bytes += chunk.length;
  }
  return { sha256: hash.digest('hex'), bytes };
}

describe('SQS stand-in (local-aws-sqs)', () => {
  let sqs: LocalSqs;
  before(async () => {
    sqs = await startLocalSqs({ maxReceiveCount: 3 });
  });
  after(async () => {
    await sqs.stop();
  });

  async function receiveOne(queueUrl: string, extra: { VisibilityTimeout?: number; WaitTimeSeconds?: number } = {}): Promise<Message | undefined> {
    const { Messages } = await sqs.client.send(new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 1, AttributeNames: ['All'], WaitTimeSeconds: 0, ...extra }));
    return Messages?.[0];
  }

  async function depth(queueUrl: string): Promise<{ visible: number; inFlight: number }> {
    const { Attributes = {} } = await sqs.client.send(new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['All'] }));
    return { visible: Number(Attributes.ApproximateNumberOfMessages), inFlight: Number(Attributes.ApproximateNumberOfMessagesNotVisible) };
  }

  it('listens on loopback with a queue whose redrive policy names the DLQ', async () => {
    assert.match(sqs.endpoint, /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.ok(sqs.queueUrl.startsWith(`${sqs.endpoint}/`));
    const { Attributes = {} } = await sqs.client.send(new GetQueueAttributesCommand({ QueueUrl: sqs.queueUrl, AttributeNames: ['All'] }));
    assert.deepEqual(JSON.parse(Attributes.RedrivePolicy ?? '{}'), { deadLetterTargetArn: sqs.dlqArn, maxReceiveCount: 3 });
  });

  it('sends, receives and deletes a message, multibyte text intact', async () => {
    const body = JSON.stringify({ client: 'Büro-Scanner', subject: 'Größe ✓' });
    const sent = await sqs.client.send(new SendMessageCommand({ QueueUrl: sqs.queueUrl, MessageBody: body }));
    const message = await receiveOne(sqs.queueUrl);
    assert.ok(message?.ReceiptHandle);
    assert.equal(message.MessageId, sent.MessageId);
    assert.equal(message.Body, body);
    assert.equal(message.Attributes?.ApproximateReceiveCount, '1');
    await sqs.client.send(new DeleteMessageCommand({ QueueUrl: sqs.queueUrl, ReceiptHandle: message.ReceiptHandle }));
    assert.deepEqual(await depth(sqs.queueUrl), { visible: 0, inFlight: 0 });
  });

  it('hides a received message until its visibility is changed, and does not count that change as a receive (as SQS)', async () => {
    await sqs.client.send(new SendMessageCommand({ QueueUrl: sqs.queueUrl, MessageBody: 'visibility' }));
    const first = await receiveOne(sqs.queueUrl, { VisibilityTimeout: 30 });
    assert.ok(first?.ReceiptHandle);
    assert.equal(await receiveOne(sqs.queueUrl), undefined);
    assert.deepEqual(await depth(sqs.queueUrl), { visible: 1, inFlight: 1 });

    await sqs.client.send(new ChangeMessageVisibilityCommand({ QueueUrl: sqs.queueUrl, ReceiptHandle: first.ReceiptHandle, VisibilityTimeout: 0 }));
    const again = await receiveOne(sqs.queueUrl, { VisibilityTimeout: 30 });
    assert.equal(again?.Body, 'visibility');
    // local-aws-sqs alone says 3 (it counts ChangeMessageVisibility as a receive); test/aws/patchedLocalSqs.ts.
    assert.equal(again.Attributes?.ApproximateReceiveCount, '2');
    assert.ok(again.ReceiptHandle);
    await sqs.client.send(new DeleteMessageCommand({ QueueUrl: sqs.queueUrl, ReceiptHandle: again.ReceiptHandle }));
  });

  it('answers a long poll at once when fewer messages than asked are there (as SQS)', async () => {
    await sqs.client.send(new SendMessageCommand({ QueueUrl: sqs.queueUrl, MessageBody: 'one of ten' }));
    const started = Date.now();
    const { Messages = [] } = await sqs.client.send(new ReceiveMessageCommand({ QueueUrl: sqs.queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 5 }));
    const waitedMs = Date.now() - started;
    assert.deepEqual(Messages.map((m) => m.Body), ['one of ten']);
    assert.ok(waitedMs < 2_000, `answered after ${waitedMs} ms, not the 5 s wait`);
    await sqs.client.send(new DeleteMessageCommand({ QueueUrl: sqs.queueUrl, ReceiptHandle: Messages[0]?.ReceiptHandle }));
  });

  it('honours MessageSystemAttributeNames (the SDK\'s name for AttributeNames)', async () => {
    await sqs.client.send(new SendMessageCommand({ QueueUrl: sqs.queueUrl, MessageBody: 'system attributes' }));
    const { Messages = [] } = await sqs.client.send(
      new ReceiveMessageCommand({ QueueUrl: sqs.queueUrl, MaxNumberOfMessages: 1, MessageSystemAttributeNames: ['ApproximateReceiveCount', 'SentTimestamp'] }),
    );
    const message = Messages[0];
    assert.equal(message?.Attributes?.ApproximateReceiveCount, '1');
    assert.match(message.Attributes?.SentTimestamp ?? '', /^\d{13}$/);
    await sqs.client.send(new DeleteMessageCommand({ QueueUrl: sqs.queueUrl, ReceiptHandle: message.ReceiptHandle }));
  });

  it('moves a message to the DLQ once it was received maxReceiveCount times without a delete', async () => {
    const sent = await sqs.client.send(new SendMessageCommand({ QueueUrl: sqs.queueUrl, MessageBody: 'poison' }));
    assert.equal((await receiveOne(sqs.queueUrl, { VisibilityTimeout: 0 }))?.Attributes?.ApproximateReceiveCount, '1');
    assert.equal((await receiveOne(sqs.queueUrl, { VisibilityTimeout: 0 }))?.Attributes?.ApproximateReceiveCount, '2');
    assert.equal((await receiveOne(sqs.queueUrl, { VisibilityTimeout: 0 }))?.Attributes?.ApproximateReceiveCount, '3');
    // The move happens when the third receive's visibility runs out; a long poll awaits it.
    const dead = await receiveOne(sqs.dlqUrl, { WaitTimeSeconds: 5 });
    assert.equal(dead?.Body, 'poison');
    assert.equal(dead.MessageId, sent.MessageId);
    assert.equal(dead.Attributes?.ApproximateReceiveCount, '1');
    assert.equal(dead.Attributes?.DeadLetterQueueSourceArn, sqs.queueArn);
    assert.deepEqual(await depth(sqs.queueUrl), { visible: 0, inFlight: 0 });
    assert.ok(dead.ReceiptHandle);
    await sqs.client.send(new DeleteMessageCommand({ QueueUrl: sqs.dlqUrl, ReceiptHandle: dead.ReceiptHandle }));
  });

  it('keeps its messages through stop() and restart() on the same port, refusing calls in between', async () => {
    for (const body of ['kept-1', 'kept-2']) {
      await sqs.client.send(new SendMessageCommand({ QueueUrl: sqs.queueUrl, MessageBody: body }));
    }
    // A long poll open when SQS goes away fails rather than hangs.
    const pendingPoll = sqs.client.send(new ReceiveMessageCommand({ QueueUrl: sqs.dlqUrl, WaitTimeSeconds: 10 }));
    await sqs.stop();
    assert.equal(sqs.running, false);
    await assert.rejects(pendingPoll);
    await assert.rejects(sqs.client.send(new SendMessageCommand({ QueueUrl: sqs.queueUrl, MessageBody: 'while down' })), /ECONNREFUSED/);

    await sqs.restart();
    assert.equal(sqs.running, true);
    await sqs.client.send(new SendMessageCommand({ QueueUrl: sqs.queueUrl, MessageBody: 'kept-3' }));
    const bodies: string[] = [];
    for (let index = 0; index < 3; index++) {
      const message = await receiveOne(sqs.queueUrl);
      assert.ok(message?.Body && message.ReceiptHandle);
      bodies.push(message.Body);
      await sqs.client.send(new DeleteMessageCommand({ QueueUrl: sqs.queueUrl, ReceiptHandle: message.ReceiptHandle }));
    }
    assert.deepEqual(bodies.sort(), ['kept-1', 'kept-2', 'kept-3']);
  });
});

describe('S3 stand-in (s3rver)', () => {
  let s3: LocalS3;
  before(async () => {
    s3 = await startLocalS3();
  });
  after(async () => {
    await s3.stop();
  });

  it('round-trips a 20 MB multipart upload from a stream, SHA-256 equal', async () => {
    const body = randomBytes(20 * 1000 * 1000);
    const expected = createHash('sha256').update(body).digest('hex');
    const chunks = Array.from({ length: Math.ceil(body.length / MIB) }, (_, index) => body.subarray(index * MIB, (index + 1) * MIB));
    const key = 'incoming/2026/11/27/multipart0001.eml';
    const upload = new Upload({
      client: s3.client,
      params: { Bucket: s3.bucket, Key: key, Body: Readable.from(chunks), ServerSideEncryption: 'AES256', ContentType: 'message/rfc822' },
      partSize: 5 * MIB,
      queueSize: 4,
    });
    const parts: number[] = [];
    upload.on('httpUploadProgress', (progress) => {
      if (progress.part !== undefined) parts.push(progress.part);
    });
    await upload.done();
    assert.ok(parts.length >= 4, `expected a multipart upload, saw parts ${parts.join(',')}`);

    const head = await s3.client.send(new HeadObjectCommand({ Bucket: s3.bucket, Key: key }));
    assert.equal(head.ContentLength, body.length);
    const object = await s3.client.send(new GetObjectCommand({ Bucket: s3.bucket, Key: key }));
    assert.deepEqual(await sha256Of(object.Body as AsyncIterable<Uint8Array>), { sha256: expected, bytes: body.length });
  });

  it('refuses a streamed PutObject whose CRC32 trailer does not match, as S3 does (400 BadDigest)', async () => {
    const framed = Buffer.from('5\r\nhello\r\n0\r\nx-amz-checksum-crc32:AAAAAA==\r\n\r\n');
    const response = await fetch(`${s3.endpoint}/${s3.bucket}/incoming/bad-digest.eml`, {
      method: 'PUT',
      headers: { 'x-amz-content-sha256': 'STREAMING-UNSIGNED-PAYLOAD-TRAILER', 'content-encoding': 'aws-chunked', 'x-amz-decoded-content-length': '5', 'x-amz-trailer': 'x-amz-checksum-crc32' },
      body: framed,
    });
    assert.equal(response.status, 400);
    assert.match(await response.text(), /<Code>BadDigest<\/Code>/);
  });

  it('stores a streamed PutObject under the SDK default checksums without chunk framing', async () => {
    const body = randomBytes(MIB + 17);
    const key = 'incoming/2026/11/27/streamed0001.eml';
    const decodedBefore = s3.decodedBodies;
    await s3.client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: key, Body: Readable.from([body]), ContentLength: body.length }));
    const object = await s3.client.send(new GetObjectCommand({ Bucket: s3.bucket, Key: key }));
    assert.deepEqual(await sha256Of(object.Body as AsyncIterable<Uint8Array>), { sha256: createHash('sha256').update(body).digest('hex'), bytes: body.length });
    assert.equal(s3.decodedBodies, decodedBefore + 1, 'the SDK sent it aws-chunked, as to S3');
  });
});

describe('DynamoDB stand-in (dynalite)', () => {
  let dynamo: LocalDynamo;
  before(async () => {
    dynamo = await startLocalDynamo();
  });
  after(async () => {
    await dynamo.stop();
  });

  it('refuses a second conditional put of the same id', async () => {
    const put = (status: string) =>
      dynamo.client.send(
        new PutItemCommand({
          TableName: dynamo.tableName,
          Item: { [LEDGER_KEY]: { S: 'q7Hk2mV9xTq4LpZ0aB3c' }, status: { S: status } },
          ConditionExpression: 'attribute_not_exists(#id)',
          ExpressionAttributeNames: { '#id': LEDGER_KEY },
        }),
      );
    await put('delivered');
    await assert.rejects(put('again'), (error: unknown) => error instanceof ConditionalCheckFailedException && error.$metadata.httpStatusCode === 400);
    const { Item } = await dynamo.client.send(new GetItemCommand({ TableName: dynamo.tableName, Key: { [LEDGER_KEY]: { S: 'q7Hk2mV9xTq4LpZ0aB3c' } }, ConsistentRead: true }));
    assert.equal(Item?.status?.S, 'delivered');
  });
});

describe('Secrets Manager stand-in', () => {
  const arn = 'arn:aws:secretsmanager:us-east-1:123456789012:secret:smarthost/upstream-AbC123';
  let secrets: LocalSecretsManager;
  before(async () => {
    secrets = await startLocalSecretsManager();
  });
  after(async () => {
    await secrets.stop();
  });

  it('answers GetSecretValue by ARN or name and counts the calls', async () => {
    secrets.setSecret(arn, JSON.stringify({ host: 'smtp.office365.com', port: 587 }));
    const before = secrets.getCalls;
    const byArn = await secrets.client.send(new GetSecretValueCommand({ SecretId: arn }));
    assert.equal(byArn.ARN, arn);
    assert.equal(byArn.Name, 'smarthost/upstream');
    assert.deepEqual(JSON.parse(byArn.SecretString ?? ''), { host: 'smtp.office365.com', port: 587 });
    assert.ok(byArn.CreatedDate instanceof Date);
    const byName = await secrets.client.send(new GetSecretValueCommand({ SecretId: 'smarthost/upstream' }));
    assert.equal(byName.VersionId, byArn.VersionId);
    assert.equal(secrets.getCalls, before + 2);
  });

  it('returns the new value after a rotation, with a new version id', async () => {
    const { VersionId: oldVersion } = await secrets.client.send(new GetSecretValueCommand({ SecretId: arn }));
    const put = await secrets.client.send(new PutSecretValueCommand({ SecretId: arn, SecretString: '{"rotated":true}' }));
    assert.notEqual(put.VersionId, oldVersion);
    const after = await secrets.client.send(new GetSecretValueCommand({ SecretId: arn }));
    assert.equal(after.SecretString, '{"rotated":true}');
    assert.equal(after.VersionId, put.VersionId);
    const rotatedAgain = secrets.setSecret(arn, '{"rotated":2}');
    assert.equal(rotatedAgain.arn, arn);
    assert.equal((await secrets.client.send(new GetSecretValueCommand({ SecretId: arn }))).VersionId, rotatedAgain.versionId);
  });

  it('represents a secret created without a value as AWS does: ResourceNotFoundException for AWSCURRENT until a value is put', async () => {
    const { arn: empty } = secrets.createEmptySecret('smarthost/empty');
    await assert.rejects(
      secrets.client.send(new GetSecretValueCommand({ SecretId: empty })),
      (error: unknown) =>
        error instanceof ResourceNotFoundException && error.message === "Secrets Manager can't find the specified secret value for staging label: AWSCURRENT",
    );
    await secrets.client.send(new PutSecretValueCommand({ SecretId: 'smarthost/empty', SecretString: '{"filled":true}' }));
    assert.equal((await secrets.client.send(new GetSecretValueCommand({ SecretId: empty }))).SecretString, '{"filled":true}');
  });

  it('answers an unknown id with ResourceNotFoundException', async () => {
    await assert.rejects(
      secrets.client.send(new GetSecretValueCommand({ SecretId: 'arn:aws:secretsmanager:us-east-1:123456789012:secret:missing-XyZ789' })),
      (error: unknown) => error instanceof ResourceNotFoundException && error.$metadata.httpStatusCode === 400 && /can't find the specified secret/.test(error.message),
    );
  });
});

describe('awsTestEnv', () => {
  it('points a child process with default-configured clients at the stand-ins', async () => {
    const running: { stop(): Promise<void> }[] = [];
    const started = <T extends { stop(): Promise<void> }>(standIn: T): T => {
      running.push(standIn);
      return standIn;
    };
    try {
      const sqs = started(await startLocalSqs());
      const s3 = started(await startLocalS3());
      const dynamo = started(await startLocalDynamo());
      const secrets = started(await startLocalSecretsManager());
      const { arn } = secrets.setSecret('smarthost/upstream', '{"from":"env"}');
      const getCallsBefore = secrets.getCalls;
      // Clients built with no endpoint, region or credentials: everything comes from the environment.
      const script = `
        import { Readable } from 'node:stream';
        import { SQSClient, ListQueuesCommand } from '@aws-sdk/client-sqs';
        import { S3Client, PutObjectCommand, GetObjectCommand } from '@aws-sdk/client-s3';
        import { DynamoDBClient, DescribeTableCommand } from '@aws-sdk/client-dynamodb';
        import { SecretsManagerClient, GetSecretValueCommand } from '@aws-sdk/client-secrets-manager';
        import { CloudWatchClient, PutMetricDataCommand } from '@aws-sdk/client-cloudwatch';
        const input = JSON.parse(process.argv[1]);
        const out = {};
        out.queues = (await new SQSClient({}).send(new ListQueuesCommand({}))).QueueUrls;
        const s3 = new S3Client({});
        // Streamed, under the SDK default checksums (aws-chunked with a CRC32 trailer): stored as the bytes sent.
        const text = Buffer.from('from the child');
        await s3.send(new PutObjectCommand({ Bucket: input.bucket, Key: 'env/check.txt', Body: Readable.from([text]), ContentLength: text.length }));
        out.object = await (await s3.send(new GetObjectCommand({ Bucket: input.bucket, Key: 'env/check.txt' }))).Body.transformToString();
        out.table = (await new DynamoDBClient({}).send(new DescribeTableCommand({ TableName: input.table }))).Table.TableStatus;
        out.secret = (await new SecretsManagerClient({}).send(new GetSecretValueCommand({ SecretId: input.secretArn }))).SecretString;
        try {
          await new CloudWatchClient({ maxAttempts: 1 }).send(new PutMetricDataCommand({ Namespace: 'Smarthost/Agent', MetricData: [{ MetricName: 'Heartbeat', Value: 1 }] }));
          out.cloudwatch = 'sent';
        } catch (error) {
          out.cloudwatch = error.code ?? error.name;
        }
        console.log(JSON.stringify(out));
      `;
      const endpoints = { sqs: sqs.endpoint, s3: s3.endpoint, dynamodb: dynamo.endpoint, secretsManager: secrets.endpoint };
      const { stdout } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', script, JSON.stringify({ bucket: s3.bucket, table: dynamo.tableName, secretArn: arn })], {
        cwd: fileURLToPath(new URL('..', import.meta.url)),
        env: childProcessEnv(endpoints, { ...process.env, AWS_PROFILE: 'someone-real', AWS_SESSION_TOKEN: 'real-looking', AWS_ENDPOINT_URL_SQS: 'https://sqs.eu-west-1.amazonaws.com' }),
        timeout: 15_000,
      });
      const out = JSON.parse(stdout) as Record<string, unknown>;
      assert.deepEqual(out, {
        queues: [sqs.dlqUrl, sqs.queueUrl],
        object: 'from the child',
        table: 'ACTIVE',
        secret: '{"from":"env"}',
        cloudwatch: 'ECONNREFUSED',
      });
      assert.equal(secrets.getCalls, getCallsBefore + 1);
    } finally {
      await Promise.all(running.map((standIn) => standIn.stop()));
    }
  });

  it('sets only loopback endpoints, fake static credentials and no profile', () => {
    const env = awsTestEnv({ sqs: 'http://127.0.0.1:1' });
    for (const [name, value] of Object.entries(env)) {
      if (name.startsWith('AWS_ENDPOINT_URL')) assert.match(value, /^http:\/\/127\.0\.0\.1:\d+$/, name);
    }
    assert.equal(env.AWS_ENDPOINT_URL, UNREACHABLE_ENDPOINT);
    assert.equal(env.AWS_EC2_METADATA_DISABLED, 'true');
    assert.equal(env.AWS_PROFILE, undefined);
    const child = childProcessEnv({}, { PATH: '/bin', AWS_PROFILE: 'prod', AWS_SESSION_TOKEN: 'x' });
    assert.equal(child.PATH, '/bin');
    assert.equal(child.AWS_PROFILE, undefined);
    assert.equal(child.AWS_SESSION_TOKEN, undefined);
  });
});
