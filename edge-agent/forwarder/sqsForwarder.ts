import { EventEmitter } from 'node:events';
import { createReadStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { SendMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import type { S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import type { MessageEnvelope } from '../../contract/messageEnvelope.ts';
import { inlineQueueMessage, planQueueMessage, s3KeyFor, s3QueueMessage, serializeQueueMessage, type QueueMessage } from '../../contract/queueMessage.ts';
import type { DeliveryLogger } from '../../delivery/logger.ts';
import type { Spool } from '../spool/spool.ts';

export interface SqsForwarderOptions {
  spool: Spool;
  sqs: Pick<SQSClient, 'send'>;
  s3: S3Client;
  queueUrl: string;
  bucket: string;
  prefix: string;
  /** Bodies up to this size travel inside the SQS message; larger ones go to S3 first. */
  inlineMaxBytes: number;
  logger: DeliveryLogger;
  /** Messages handed over at once. */
  concurrency?: number;
  /** Wait after the first failure; doubles with each further one up to maxBackoffMs. */
  initialBackoffMs?: number;
  maxBackoffMs?: number;
}

/**
 * Cloud mode's half of the agent: hands each spooled message to SQS (the body to S3 first when
 * it is too large to travel inline), oldest first, and removes it from the spool only once AWS
 * has confirmed. While AWS is unreachable or throttling, mail stays in the spool and the
 * forwarder backs off; a crash between the send and the removal sends a message twice, which
 * the delivery side recognises by its id.
 */
export class SqsForwarder extends EventEmitter<{ forwarded: [MessageEnvelope]; failed: [MessageEnvelope, Error] }> {
  private readonly pending = new Map<string, MessageEnvelope>();
  private consecutiveFailures = 0;
  private stopping = false;
  private running: Promise<void> | undefined;
  private wake: (() => void) | undefined;
  private idleWaiters: (() => void)[] = [];

  constructor(private readonly options: SqsForwarderOptions) {
    super();
  }

  start(queued: MessageEnvelope[]): void {
    for (const envelope of queued) {
      this.pending.set(envelope.id, envelope);
    }
    this.running = this.loop();
  }

  enqueue(envelope: MessageEnvelope): void {
    if (this.stopping) {
      return; // Still in the spool; forwarded after the next start.
    }
    this.pending.set(envelope.id, envelope);
    this.wake?.();
  }

  get depth(): number {
    return this.pending.size;
  }

  /** Resolves once the spool has nothing left to forward (tests). */
  whenIdle(): Promise<void> {
    if (this.pending.size === 0) {
      return Promise.resolve();
    }
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Finishes the hand-overs in progress (up to timeoutMs) and stops. */
  async stop(timeoutMs: number): Promise<void> {
    this.stopping = true;
    this.wake?.();
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.running, new Promise((resolve) => (timer = setTimeout(resolve, timeoutMs)))]);
    clearTimeout(timer);
  }

  private async loop(): Promise<void> {
    while (!this.stopping) {
      if (this.pending.size === 0) {
        for (const resolve of this.idleWaiters.splice(0)) resolve();
        await this.sleep(Infinity);
        continue;
      }
      const batch = [...this.pending.values()].sort((a, b) => (a.id < b.id ? -1 : 1)).slice(0, this.options.concurrency ?? 4);
      const results = await Promise.allSettled(batch.map((envelope) => this.forward(envelope)));
      const failures = results.filter((r) => r.status === 'rejected').length;
      if (failures === 0) {
        this.consecutiveFailures = 0;
        continue;
      }
      this.consecutiveFailures += 1;
      const backoff = Math.min(this.options.maxBackoffMs ?? 300_000, (this.options.initialBackoffMs ?? 1_000) * 2 ** (this.consecutiveFailures - 1));
      this.options.logger.warn({ failures, backoffMs: backoff, queued: this.pending.size }, 'AWS unreachable or refusing, mail stays in the spool');
      await this.sleep(backoff);
    }
  }

  /** Waits for ms, or until a new message arrives or stop() is called. */
  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = Number.isFinite(ms) ? setTimeout(done, ms) : undefined;
      const self = this;
      function done(): void {
        clearTimeout(timer);
        self.wake = undefined;
        resolve();
      }
      // During a backoff a new message must not cut the wait short; only stop() may.
      this.wake = Number.isFinite(ms) ? () => this.stopping && done() : done;
    });
  }

  private async forward(envelope: MessageEnvelope): Promise<void> {
    const { spool, sqs, queueUrl, logger } = this.options;
    const started = Date.now();
    try {
      const message = await this.message(envelope);
      await sqs.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: serializeQueueMessage(message) }));
      await spool.remove(envelope);
      this.pending.delete(envelope.id);
      logger.info({ messageId: envelope.id, size: envelope.size, via: message.body.kind, ms: Date.now() - started }, 'handed to SQS');
      this.emit('forwarded', envelope);
    } catch (error) {
      const err = error as Error & { $metadata?: { httpStatusCode?: number } };
      logger.warn({ messageId: envelope.id, err: err.name, status: err.$metadata?.httpStatusCode, reason: err.message?.slice(0, 200) }, 'could not hand to SQS, will retry');
      this.emit('failed', envelope, err);
      throw error;
    }
  }

  private async message(envelope: MessageEnvelope): Promise<QueueMessage> {
    const { spool, s3, bucket, prefix, inlineMaxBytes } = this.options;
    if (planQueueMessage(envelope, envelope.size, { inlineMaxBytes }).kind === 'inline') {
      return inlineQueueMessage(envelope, await readFile(spool.bodyPath(envelope.id)));
    }
    const key = s3KeyFor(envelope, prefix);
    // Multipart from a file stream: a 35 MB scan is never held in memory.
    await new Upload({
      client: s3,
      params: { Bucket: bucket, Key: key, Body: createReadStream(spool.bodyPath(envelope.id)), ContentType: 'message/rfc822' },
      queueSize: 2,
      partSize: 8 * 1024 * 1024,
    }).done();
    return s3QueueMessage(envelope, { bucket, key });
  }
}
