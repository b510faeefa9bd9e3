import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { GetQueueAttributesCommand, ReceiveMessageCommand, SendMessageCommand } from '@aws-sdk/client-sqs';
import { redrive } from '../../edge-agent/cloud/cloudCommands.ts';
import { MoveTaskUnavailableError, redriveDeadLetters } from '../../edge-agent/cloud/redrive.ts';
import type { AgentConfig } from '../../edge-agent/config/agentConfigSchema.ts';
import { startLocalSqs, type LocalSqs } from '../../testbed/aws/localSqs.ts';

/** What `smarthost redrive` writes, as one string. */
function capture(): { out: NodeJS.WritableStream; text: () => string } {
  const chunks: string[] = [];
  const out = { write: (chunk: string) => chunks.push(chunk) > 0 } as unknown as NodeJS.WritableStream;
  return { out, text: () => chunks.join('') };
}

describe('smarthost redrive where the endpoint has no message move task', () => {
  let sqs: LocalSqs;

  before(async () => {
    sqs = await startLocalSqs({ unavailableActions: ['StartMessageMoveTask'], maxAttempts: 1 });
  });

  after(async () => {
    await sqs?.stop();
  });

  it('says the move task is not available and how else to move them, not the SDK deserialization message', async () => {
    await assert.rejects(redriveDeadLetters({ sqs: sqs.client, dlqArn: sqs.dlqArn, queueArn: sqs.queueArn }), (error: unknown) => {
      assert.ok(error instanceof MoveTaskUnavailableError);
      assert.equal(
        error.message,
        `SQS's message move task (StartMessageMoveTask) is not available at this endpoint (HTTP 404); move the messages from ${sqs.dlqArn} to ${sqs.queueArn} another way: one by one (receive, send, delete), or in the SQS console (the dead-letter queue's "Start DLQ redrive")`,
      );
      assert.doesNotMatch(error.message, /Deserialization|\$response/);
      return true;
    });
  });

  it('moves every dead letter to the queue one by one, body and attributes kept, and empties the dead-letter queue', async () => {
    const bodies = Array.from({ length: 13 }, (_, i) => JSON.stringify({ v: 1, id: `dead${String(i).padStart(6, '0')}` }));
    for (const body of bodies) {
      await sqs.client.send(
        new SendMessageCommand({ QueueUrl: sqs.dlqUrl, MessageBody: body, MessageAttributes: { 'smarthost.kind': { DataType: 'String', StringValue: 'config' } } }),
      );
    }
    const { out, text } = capture();
    const config = { queue: { kind: 'sqs', sqs: { queueUrl: sqs.queueUrl, deadLetterQueueUrl: sqs.dlqUrl } } } as unknown as Pick<AgentConfig, 'queue'>;
    await redrive(config, out, sqs.client);
    assert.match(text(), /^SQS's message move task \(StartMessageMoveTask\) is not available at this endpoint \(HTTP 404\); /);
    assert.match(text(), /\nmoving them one by one instead: each is deleted from the dead-letter queue once the queue has it\nmoved 13 dead letters back to the queue\n$/);

    const moved: { body: string; kind: string | undefined }[] = [];
    for (;;) {
      const { Messages = [] } = await sqs.client.send(
        new ReceiveMessageCommand({ QueueUrl: sqs.queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 0, MessageAttributeNames: ['All'] }),
      );
      if (Messages.length === 0) break;
      moved.push(...Messages.map((m) => ({ body: m.Body ?? '', kind: m.MessageAttributes?.['smarthost.kind']?.StringValue })));
    }
    assert.deepEqual(moved.map((m) => m.body).sort(), [...bodies].sort());
    assert.ok(moved.every((m) => m.kind === 'config'), 'attributes kept');
    const { Attributes } = await sqs.client.send(
      new GetQueueAttributesCommand({ QueueUrl: sqs.dlqUrl, AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'] }),
    );
    assert.deepEqual(Attributes, { ApproximateNumberOfMessages: '0', ApproximateNumberOfMessagesNotVisible: '0' });
  });
});
