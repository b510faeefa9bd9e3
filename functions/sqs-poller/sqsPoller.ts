import { EventEmitter } from 'node:events';
import { DeleteMessageBatchCommand, ReceiveMessageCommand, type Message, type SQSClient } from '@aws-sdk/client-sqs';
import type { DeliveryLogger } from '../../delivery/logger.ts';
import { handleQueueRecord, RetryLaterError, type QueueRecordDeps, type RecordResult } from '../queue-delivery/handleQueueRecord.ts';

export interface SqsPollerOptions {
  sqs: Pick<SQSClient, 'send'>;
  queueUrl: string;
  deps: QueueRecordDeps;
  logger: DeliveryLogger;
  /** Long-poll wait; 20 s is SQS's maximum and the cheapest. */
  waitSeconds?: number;
  /** How long a received message stays hidden while it is being delivered. */
  visibilitySeconds?: number;
  /** Pause after the queue itself could not be reached. */
  errorBackoffMs?: number;
}

export type PolledRecordEvent = { sqsMessageId: string; result: RecordResult | 'retry' | 'error' };

/**
 * `smarthost worker`: the delivery function's code on a VM or container, long-polling the queue
 * instead of being invoked by an event source. A record that succeeds is deleted; one that must
 * come back stays, with the visibility timeout handleQueueRecord set for it.
 */
export class SqsPoller extends EventEmitter<{ record: [PolledRecordEvent] }> {
  private stopping = false;
  private loop: Promise<void> | undefined;
  private readonly abort = new AbortController();

  constructor(private readonly options: SqsPollerOptions) {
    super();
  }

  start(): void {
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.stopping = true;
    this.abort.abort();
    await this.loop;
  }

  private async run(): Promise<void> {
    const { sqs, queueUrl, logger } = this.options;
    while (!this.stopping) {
      let messages: Message[];
      try {
        const received = await sqs.send(
          new ReceiveMessageCommand({
            QueueUrl: queueUrl,
            MaxNumberOfMessages: 10,
            WaitTimeSeconds: this.options.waitSeconds ?? 20,
            VisibilityTimeout: this.options.visibilitySeconds ?? 360,
            AttributeNames: ['All'],
          }),
          { abortSignal: this.abort.signal },
        );
        messages = received.Messages ?? [];
      } catch (error) {
        if (this.stopping) return;
        logger.warn({ err: (error as Error).name, reason: (error as Error).message?.slice(0, 200) }, 'could not read the queue, retrying');
        await new Promise((resolve) => setTimeout(resolve, this.options.errorBackoffMs ?? 5_000));
        continue;
      }
      // Records of a batch run together: the SMTP pool caps how many are submitted at once.
      const done = await Promise.all(messages.map((message) => this.handle(message)));
      const deletable = messages.filter((_, i) => done[i]);
      if (deletable.length > 0) {
        await sqs
          .send(new DeleteMessageBatchCommand({ QueueUrl: queueUrl, Entries: deletable.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle })) }))
          .catch((error: unknown) => logger.warn({ err: (error as Error).name }, 'could not delete handled messages; they will be seen again and skipped'));
      }
    }
  }

  /** True when the message may be deleted. */
  private async handle(message: Message): Promise<boolean> {
    const sqsMessageId = message.MessageId ?? '';
    try {
      const result = await handleQueueRecord(
        {
          messageId: sqsMessageId,
          body: message.Body ?? '',
          receiptHandle: message.ReceiptHandle ?? '',
          receiveCount: Number(message.Attributes?.ApproximateReceiveCount) || 1,
        },
        this.options.deps,
      );
      this.emit('record', { sqsMessageId, result });
      return true;
    } catch (error) {
      if (!(error instanceof RetryLaterError)) {
        // AWS trouble mid-record (ledger, S3, DLQ): the message comes back after its visibility timeout.
        this.options.logger.error({ sqsMessageId, err: (error as Error).name, reason: (error as Error).message?.slice(0, 200) }, 'record failed, it will come back');
      }
      this.emit('record', { sqsMessageId, result: error instanceof RetryLaterError ? 'retry' : 'error' });
      return false;
    }
  }
}
