import { EventEmitter } from 'node:events';
import { Readable } from 'node:stream';
import { GetQueueAttributesCommand, SendMessageBatchCommand, type SQSClient } from '@aws-sdk/client-sqs';
import type { S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import type { MessageEnvelope } from '../../contract/messageEnvelope.ts';
import {
  inlineQueueMessage,
  planQueueMessage,
  s3KeyFor,
  s3QueueMessage,
  serializeQueueMessage,
  SQS_DEFAULT_MAX_MESSAGE_BYTES,
  SQS_MAX_MESSAGE_BYTES,
  SQS_MIN_MESSAGE_BYTES,
  type QueueMessage,
} from '../../contract/queueMessage.ts';
import type { DeliveryLogger } from '../../delivery/logger.ts';
import { readHeaderSection } from '../../delivery/notices/originalHeaders.ts';
import type { AgentConfig } from '../config/agentConfigSchema.ts';
import { cloudNoticeTo } from '../notices/cloudNoticeTo.ts';
import type { SpoolHistory } from '../spool/spoolHistory.ts';
import type { Spool } from '../spool/spool.ts';

/**
 * SendMessageBatch takes at most 10 entries, and the bodies together may not exceed the queue's
 * MaximumMessageSize; the margin covers the entry ids.
 */
const BATCH_ENTRIES = 10;
const BATCH_MARGIN_BYTES = 1024;
/** How long a failed MaximumMessageSize lookup is trusted to the default before it is asked again. */
const LIMIT_LOOKUP_RETRY_MS = 60_000;

/** Groups serialized messages into batches that SQS accepts. */
function* chunksBySize<T extends { text: string }>(items: T[], batchBytes: number): Generator<T[]> {
  let chunk: T[] = [];
  let bytes = 0;
  for (const item of items) {
    const size = Buffer.byteLength(item.text);
    if (chunk.length > 0 && (chunk.length === BATCH_ENTRIES || bytes + size > batchBytes)) {
      yield chunk;
      chunk = [];
      bytes = 0;
    }
    chunk.push(item);
    bytes += size;
  }
  if (chunk.length > 0) yield chunk;
}

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
  /** S3 uploads at once. */
  concurrency?: number;
  /** Where a handed-over message's history goes (its accepted and handed-over events). */
  history?: SpoolHistory;
  /** Wait after the first failure; doubles with each further one up to maxBackoffMs. */
  initialBackoffMs?: number;
  maxBackoffMs?: number;
  /**
   * The failure notice settings, when any notice can go out: each queue message then names the
   * addresses the cloud sends its notice to (`envelope.noticeTo`), decided here because only the
   * agent has them.
   */
  notices?: Pick<AgentConfig, 'notices' | 'clients'>;
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
  /** The queue's MaximumMessageSize once SQS told it; until then, the default every queue takes. */
  private maxMessageBytes: number | undefined;
  private limitLookupAfter = 0;

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

  /** The map keeps arrival order (ids sort by arrival, new mail is appended): its first key is the oldest. */
  get oldestId(): string | undefined {
    for (const id of this.pending.keys()) return id;
    return undefined;
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
      // The map keeps arrival order (ids sort by arrival, new mail is appended): oldest first.
      const batch: MessageEnvelope[] = [];
      for (const envelope of this.pending.values()) {
        if (batch.length === BATCH_ENTRIES) break;
        batch.push(envelope);
      }
      const failures = await this.forwardBatch(batch);
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

  /**
   * Hands up to ten messages over in as few SendMessageBatch calls as the size limit allows;
   * returns how many could not be handed over (they stay in the spool).
   */
  private async forwardBatch(batch: MessageEnvelope[]): Promise<number> {
    const started = Date.now();
    let failures = 0;
    const maxMessageBytes = await this.queueMessageLimit();
    // Bodies for S3 are uploaded first (two at a time), inline ones are read from the spool.
    const prepared: { envelope: MessageEnvelope; text: string; via: string }[] = [];
    const uploads = this.options.concurrency ?? 2;
    for (let i = 0; i < batch.length; i += uploads) {
      const settled = await Promise.allSettled(batch.slice(i, i + uploads).map((envelope) => this.message(envelope, maxMessageBytes)));
      settled.forEach((result, j) => {
        const envelope = batch[i + j] as MessageEnvelope;
        if (result.status === 'fulfilled') {
          prepared.push({ envelope, text: serializeQueueMessage(result.value), via: result.value.body.kind });
        } else {
          failures += 1;
          this.failed(envelope, result.reason as Error);
        }
      });
    }
    for (const chunk of chunksBySize(prepared, maxMessageBytes - BATCH_MARGIN_BYTES)) {
      let response;
      try {
        response = await this.options.sqs.send(
          new SendMessageBatchCommand({ QueueUrl: this.options.queueUrl, Entries: chunk.map((p, i) => ({ Id: String(i), MessageBody: p.text })) }),
        );
      } catch (error) {
        failures += chunk.length;
        for (const p of chunk) this.failed(p.envelope, error as Error);
        continue;
      }
      const refused = new Map((response.Failed ?? []).map((f) => [Number(f.Id), f]));
      // Only an entry SQS lists as Successful has been taken: one it does not mention stays in the spool.
      const taken = new Set((response.Successful ?? []).map((s) => Number(s.Id)));
      for (const [i, p] of chunk.entries()) {
        const failure = refused.get(i);
        if (failure || !taken.has(i)) {
          failures += 1;
          const error = failure
            ? Object.assign(new Error(failure.Message ?? 'refused'), { name: failure.Code ?? 'BatchEntryFailed' })
            : Object.assign(new Error('SQS confirmed neither success nor failure for this entry'), { name: 'BatchEntryUnconfirmed' });
          this.failed(p.envelope, error);
          continue;
        }
        try {
          // History is for people: failing to keep it must not keep the message in the spool.
          await this.options.history
            ?.archive(p.envelope, [{ type: 'handed-over', messageId: p.envelope.id, at: new Date().toISOString(), queue: this.options.queueUrl, bodyInS3: p.via === 's3' }], { hadLive: false })
            .catch((error: unknown) => this.options.logger.warn({ messageId: p.envelope.id, err: String(error) }, 'could not write the delivery history'));
          await this.options.spool.remove(p.envelope, { hasState: false });
        } catch (error) {
          // Already in SQS: sent again after a restart, and recognised there by its id.
          this.options.logger.warn({ messageId: p.envelope.id, err: (error as Error).message }, 'handed to SQS but could not be removed from the spool');
        }
        this.pending.delete(p.envelope.id);
        this.options.logger.info({ messageId: p.envelope.id, size: p.envelope.size, via: p.via, ms: Date.now() - started }, 'handed to SQS');
        this.emit('forwarded', p.envelope);
      }
    }
    return failures;
  }

  private failed(envelope: MessageEnvelope, error: Error & { $metadata?: { httpStatusCode?: number } }): void {
    this.options.logger.warn(
      { messageId: envelope.id, err: error.name, status: error.$metadata?.httpStatusCode, reason: error.message?.slice(0, 200) },
      'could not hand to SQS, will retry',
    );
    this.emit('failed', envelope, error);
  }

  /**
   * The queue's MaximumMessageSize (the CDK app's queues take 1 MiB, a queue made by hand 256 KiB
   * unless raised): bodies up to `inlineMaxBytes` travel inline only when the message fits it.
   * Without an answer (no sqs:GetQueueAttributes, AWS unreachable) the default every queue
   * accepts is used, so nothing is refused for its size; larger bodies then go by S3.
   */
  private async queueMessageLimit(): Promise<number> {
    if (this.maxMessageBytes !== undefined) return this.maxMessageBytes;
    if (Date.now() < this.limitLookupAfter) return SQS_DEFAULT_MAX_MESSAGE_BYTES;
    try {
      const response = await this.options.sqs.send(new GetQueueAttributesCommand({ QueueUrl: this.options.queueUrl, AttributeNames: ['MaximumMessageSize'] }));
      const size = Number(response.Attributes?.MaximumMessageSize);
      if (!Number.isSafeInteger(size) || size < SQS_MIN_MESSAGE_BYTES || size > SQS_MAX_MESSAGE_BYTES) throw new Error(`unexpected MaximumMessageSize ${String(response.Attributes?.MaximumMessageSize)}`);
      this.maxMessageBytes = size;
      // The body alone, as base64, no envelope: above this nothing of that size can travel inline.
      if (Math.ceil(this.options.inlineMaxBytes / 3) * 4 > size) {
        this.options.logger.warn(
          { inlineMaxBytes: this.options.inlineMaxBytes, maxMessageBytes: size },
          'queue.sqs.inlineMaxBytes is more than the queue takes inline (its MaximumMessageSize): the largest of those bodies go by S3',
        );
      }
      return size;
    } catch (error) {
      this.limitLookupAfter = Date.now() + LIMIT_LOOKUP_RETRY_MS;
      this.options.logger.warn(
        { err: (error as Error).name, reason: (error as Error).message?.slice(0, 200), assumed: SQS_DEFAULT_MAX_MESSAGE_BYTES },
        "could not read the queue's MaximumMessageSize (sqs:GetQueueAttributes), assuming the default",
      );
      return SQS_DEFAULT_MAX_MESSAGE_BYTES;
    }
  }

  /**
   * The envelope as the queue message carries it: with the notice's addresses when notices are on.
   * `body`: the whole body when it was read already, so its header needs no second read.
   */
  private async queueEnvelope(envelope: MessageEnvelope, body: Buffer | undefined): Promise<MessageEnvelope> {
    const { notices, spool, logger } = this.options;
    if (!notices) return envelope;
    const targets = cloudNoticeTo(notices, envelope, await readHeaderSection(body ? Readable.from([body]) : spool.openBody(envelope)));
    for (const reason of targets.suppressed) logger.debug({ messageId: envelope.id, reason }, 'the cloud will send this one no failure notice');
    return targets.to.length > 0 ? { ...envelope, noticeTo: targets.to } : envelope;
  }

  private async message(spooled: MessageEnvelope, maxMessageBytes: number): Promise<QueueMessage> {
    const { spool, s3, bucket, prefix, inlineMaxBytes } = this.options;
    const limits = { inlineMaxBytes, maxMessageBytes };
    // A body that goes inline is read once, for its header (the notice's addresses) and the message.
    const body = planQueueMessage(spooled, spooled.size, limits).kind === 'inline' ? await spool.readBody(spooled) : undefined;
    const envelope = await this.queueEnvelope(spooled, body);
    // The notice's addresses may push a body near the limit out to S3.
    if (planQueueMessage(envelope, envelope.size, limits).kind === 'inline') {
      return inlineQueueMessage(envelope, body ?? (await spool.readBody(envelope)));
    }
    const key = s3KeyFor(envelope, prefix);
    // Multipart from a file stream: a 35 MB scan is never held in memory.
    await new Upload({
      client: s3,
      params: { Bucket: bucket, Key: key, Body: spool.openBody(envelope), ContentType: 'message/rfc822' },
      queueSize: 2,
      partSize: 8 * 1024 * 1024,
    }).done();
    return s3QueueMessage(envelope, { bucket, key });
  }
}
