import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { GetQueueAttributesCommand, StartMessageMoveTaskCommand } from '@aws-sdk/client-sqs';
import { listRedriveTasks, redriveDeadLetters } from '../../edge-agent/cloud/redrive.ts';
import { FakeSqs } from '../infra/helpers/fakeSqs.ts';

const DLQ_ARN = 'arn:aws:sqs:eu-west-1:123456789012:Smarthost-MailDeadLetterQueue';
const DLQ_URL = 'https://sqs.eu-west-1.amazonaws.com/123456789012/Smarthost-MailDeadLetterQueue';
const QUEUE_ARN = 'arn:aws:sqs:eu-west-1:123456789012:Smarthost-MailQueue';

describe('redriveDeadLetters', () => {
  it('starts a message move task from the dead-letter queue to the mail queue and returns its handle', async () => {
    const sqs = new FakeSqs();
    assert.deepEqual(await redriveDeadLetters({ sqs: sqs.client, dlqArn: DLQ_ARN, queueArn: QUEUE_ARN }), { taskHandle: 'task-handle-1' });
    assert.deepEqual(
      sqs.calls.map((call) => [call.constructor.name, call.input]),
      [['StartMessageMoveTaskCommand', { SourceArn: DLQ_ARN, DestinationArn: QUEUE_ARN, MaxNumberOfMessagesPerSecond: undefined }]],
    );
  });

  it('looks the dead-letter queue ARN up when given its URL', async () => {
    const sqs = new FakeSqs();
    sqs.queueArn = DLQ_ARN;
    await redriveDeadLetters({ sqs: sqs.client, dlqUrl: DLQ_URL, queueArn: QUEUE_ARN, maxPerSecond: 50 });
    assert.deepEqual(sqs.callsOf(GetQueueAttributesCommand)[0]?.input, { QueueUrl: DLQ_URL, AttributeNames: ['QueueArn'] });
    assert.deepEqual(sqs.callsOf(StartMessageMoveTaskCommand)[0]?.input, { SourceArn: DLQ_ARN, DestinationArn: QUEUE_ARN, MaxNumberOfMessagesPerSecond: 50 });
  });

  it('names both queues when SQS refuses, keeping its error as the cause', async () => {
    const sqs = new FakeSqs();
    const refusal = Object.assign(new Error('There is already a task running. Only one active task is allowed for each source queue arn at a given time.'), {
      name: 'UnsupportedOperation',
    });
    sqs.startError = refusal;
    await assert.rejects(redriveDeadLetters({ sqs: sqs.client, dlqArn: DLQ_ARN, queueArn: QUEUE_ARN }), (error: unknown) => {
      assert.ok(error instanceof Error);
      assert.equal(
        error.message,
        `could not start moving messages from ${DLQ_ARN} to ${QUEUE_ARN}: There is already a task running. Only one active task is allowed for each source queue arn at a given time.`,
      );
      assert.equal(error.cause, refusal);
      return true;
    });
  });

  it('fails when SQS answers without a task handle', async () => {
    const sqs = new FakeSqs();
    sqs.startAnswer = {};
    await assert.rejects(redriveDeadLetters({ sqs: sqs.client, dlqArn: DLQ_ARN, queueArn: QUEUE_ARN }), {
      message: `SQS started no message move task from ${DLQ_ARN} to ${QUEUE_ARN} (no task handle in its answer)`,
    });
  });

  it('refuses a missing dead-letter queue or a rate SQS does not take, before calling SQS', async () => {
    const sqs = new FakeSqs();
    await assert.rejects(redriveDeadLetters({ sqs: sqs.client, queueArn: QUEUE_ARN }), { name: 'TypeError', message: 'give the dead-letter queue as dlqArn or dlqUrl' });
    for (const rate of [0, 501, 1.5]) {
      await assert.rejects(redriveDeadLetters({ sqs: sqs.client, dlqArn: DLQ_ARN, queueArn: QUEUE_ARN, maxPerSecond: rate }), {
        name: 'RangeError',
        message: `maxPerSecond must be a whole number from 1 to 500, got ${rate}`,
      });
    }
    assert.equal(sqs.calls.length, 0);
  });
});

describe('listRedriveTasks', () => {
  it('reports the recent move tasks with progress', async () => {
    const sqs = new FakeSqs();
    sqs.tasks = [
      { TaskHandle: 'h2', Status: 'RUNNING', ApproximateNumberOfMessagesMoved: 3, ApproximateNumberOfMessagesToMove: 7, StartedTimestamp: 1_795_000_000_000 },
      { Status: 'FAILED', ApproximateNumberOfMessagesMoved: 0, FailureReason: 'AccessDenied', StartedTimestamp: 1_794_000_000_000 },
    ];
    assert.deepEqual(await listRedriveTasks({ sqs: sqs.client, dlqArn: DLQ_ARN }), [
      { taskHandle: 'h2', status: 'RUNNING', moved: 3, toMove: 7, startedAt: new Date(1_795_000_000_000), failureReason: undefined },
      { taskHandle: undefined, status: 'FAILED', moved: 0, toMove: undefined, startedAt: new Date(1_794_000_000_000), failureReason: 'AccessDenied' },
    ]);
  });
});
