import { SendMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { DLQ_ATTRIBUTES } from '../../contract/cloudResources.ts';
import type { FailureKind } from '../../delivery/classifyReply.ts';

export interface DeadLetterEntry {
  /** The queue message exactly as received, so a redrive delivers it again. */
  body: string;
  reason: string;
  reply?: string;
  kind: FailureKind | 'malformed';
}

/**
 * Moves a message the function gives up on to the dead-letter queue itself, with why, instead of
 * letting SQS move it after maxReceiveCount without a reason. `smarthost failed` shows the reason;
 * `smarthost redrive` puts the message back after the operator fixed the cause.
 */
export class DeadLetterQueue {
  constructor(
    private readonly sqs: Pick<SQSClient, 'send'>,
    private readonly queueUrl: string,
  ) {}

  async put(letter: DeadLetterEntry): Promise<void> {
    const text = (value: string) => ({ DataType: 'String', StringValue: value.slice(0, 1000) || '-' });
    await this.sqs.send(
      new SendMessageCommand({
        QueueUrl: this.queueUrl,
        MessageBody: letter.body,
        MessageAttributes: {
          [DLQ_ATTRIBUTES.reason]: text(letter.reason),
          [DLQ_ATTRIBUTES.kind]: text(letter.kind),
          ...(letter.reply ? { [DLQ_ATTRIBUTES.reply]: text(letter.reply) } : {}),
        },
      }),
    );
  }
}
