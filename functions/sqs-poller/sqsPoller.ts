import { EventEmitter } from 'node:events';
import { setTimeout as delay } from 'node:timers/promises';
import { ReceiveMessageCommand, type Message, type SQSClient } from '@aws-sdk/client-sqs';
import type { DeliveryLogger } from '../../delivery/logger.ts';
import { handleQueueRecord, RetryLaterError, type QueueRecordDeps, type RecordResult } from '../queue-delivery/handleQueueRecord.ts';
import { applyToMessages, type BatchRetry } from './sqsBatch.ts';

/** SQS returns at most this many messages per ReceiveMessage. */
const RECEIVE_MAX = 10;

export interface SqsPollerOptions {
  sqs: Pick<SQSClient, 'send'>;
  queueUrl: string;
  deps: QueueRecordDeps;
  logger: DeliveryLogger;
  /** Long-poll wait; 20 s is SQS's maximum and the cheapest. */
  waitSeconds?: number;
  /** How long a received message stays hidden before its delivery's heartbeat takes over. */
  visibilitySeconds?: number;
  /** Pause after the queue itself could not be reached. */
  errorBackoffMs?: number;
  /**
   * Records delivered at once (the upstream's connection limit). The poller receives no more
   * than it can start, so no message waits hidden behind others.
   * @default 3
   */
  concurrency?: number;
  /** Retries of the entries a DeleteMessageBatch or ChangeMessageVisibilityBatch refused. */
  batchRetry?: BatchRetry;
}

export type PolledRecordEvent = { sqsMessageId: string; result: RecordResult | 'retry' | 'error' };

/**
 * `smarthost worker`: the delivery function's code on a VM or container, long-polling the queue
 * instead of being invoked by an event source. A record that succeeds is deleted; one that must
 * come back stays, with the visibility timeout handleQueueRecord set for it. While a record is
 * delivered its claim is held (handleQueueRecord's heartbeat). Stopping ends the long poll, gives
 * back at once (visibility 0) what was received but not started, and waits for the records under way.
 */
export class SqsPoller extends EventEmitter<{ record: [PolledRecordEvent]; 'gave-back': [Message[]] }> {
  private stopping = false;
  private loop: Promise<void> | undefined;
  private readonly abort = new AbortController();
  private readonly active = new Set<Promise<void>>();
  private readonly toDelete: Message[] = [];
  private deleting: Promise<void> | undefined;
  private slotFreed: (() => void) | undefined;

  constructor(private readonly options: SqsPollerOptions) {
    super();
  }

  start(): void {
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.stopping = true;
    this.abort.abort();
    this.slotFreed?.();
    await this.loop;
    await Promise.all(this.active);
    await this.deleting;
  }

  private get concurrency(): number {
    return Math.max(1, this.options.concurrency ?? 3);
  }

  private async run(): Promise<void> {
    const { sqs, queueUrl, logger } = this.options;
    while (!this.stopping) {
      if (this.active.size >= this.concurrency) {
        await new Promise<void>((resolve) => (this.slotFreed = resolve));
        continue;
      }
      let messages: Message[];
      try {
        const received = await sqs.send(
          new ReceiveMessageCommand({
            QueueUrl: queueUrl,
            MaxNumberOfMessages: Math.min(RECEIVE_MAX, this.concurrency - this.active.size),
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
        await delay(this.options.errorBackoffMs ?? 5_000);
        continue;
      }
      if (this.stopping) {
        // Received as the stop came: another worker may have them now instead of in a visibility timeout.
        await this.giveBack(messages);
        return;
      }
      for (const message of messages) this.begin(message);
    }
  }

  private begin(message: Message): void {
    const running = this.handle(message).then((deletable) => {
      if (deletable) this.delete(message);
    });
    this.active.add(running);
    void running.finally(() => {
      this.active.delete(running);
      const freed = this.slotFreed;
      this.slotFreed = undefined;
      freed?.();
    });
  }

  private async giveBack(messages: Message[]): Promise<void> {
    if (messages.length === 0) return;
    const { sqs, queueUrl, logger } = this.options;
    await applyToMessages(sqs, queueUrl, messages, { kind: 'visibility', seconds: 0 }, logger, this.options.batchRetry);
    logger.info({ messages: messages.length }, 'stopping: gave back messages received but not started');
    this.emit('gave-back', messages);
  }

  /** Deletes handled messages in batches: those that finish while a batch is under way go in the next. */
  private delete(message: Message): void {
    this.toDelete.push(message);
    this.deleting ??= (async () => {
      const { sqs, queueUrl, logger } = this.options;
      while (this.toDelete.length > 0) {
        await applyToMessages(sqs, queueUrl, this.toDelete.splice(0), { kind: 'delete' }, logger, this.options.batchRetry);
      }
      this.deleting = undefined;
    })();
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
