import { createHash } from 'node:crypto';
import { Readable, Transform, type TransformCallback } from 'node:stream';
import { DeleteObjectCommand, GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import type { MessageEnvelope } from '../../contract/messageEnvelope.ts';
import { decodeInlineBody, QueueMessageError, verifyBody, type QueueMessage } from '../../contract/queueMessage.ts';

type ExpectedBody = Pick<MessageEnvelope, 'id' | 'size' | 'sha256'>;

/**
 * Passes an S3 body through while checking it against the queue message's size and SHA-256. It
 * errors as soon as the body runs longer than promised, and at its end (before 'end', so the
 * SMTP submission is aborted before the final dot) when it is shorter or its digest differs:
 * a corrupted object is never delivered, not even once.
 */
export class VerifyingBodyStream extends Transform {
  private readonly hash = createHash('sha256');
  private bytes = 0;
  /** Why the body failed its check, once it has; the stream then also errors with it. */
  failure: QueueMessageError | undefined;

  constructor(private readonly expected: ExpectedBody) {
    super();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.bytes += chunk.length;
    if (this.bytes > this.expected.size) {
      callback(this.fail(`body of message ${this.expected.id} runs past the ${this.expected.size} bytes the queue message says`));
      return;
    }
    this.hash.update(chunk);
    callback(null, chunk);
  }

  override _flush(callback: TransformCallback): void {
    if (this.bytes !== this.expected.size) {
      callback(this.fail(`body of message ${this.expected.id} has ${this.bytes} bytes, the queue message says ${this.expected.size}`));
      return;
    }
    const digest = this.hash.digest('hex');
    if (digest !== this.expected.sha256) {
      callback(this.fail(`body of message ${this.expected.id} has SHA-256 ${digest}, the queue message says ${this.expected.sha256}`));
      return;
    }
    callback();
  }

  private fail(text: string): QueueMessageError {
    this.failure = new QueueMessageError('body-mismatch', text);
    return this.failure;
  }
}

/** The check failure of a body BodyStore.open returned, once its stream has been read. */
export function bodyCheckFailure(body: Readable): QueueMessageError | undefined {
  return body instanceof VerifyingBodyStream ? body.failure : undefined;
}

/** Opens a queue message's body, wherever it travelled; deletes the S3 copy once delivered. */
export class BodyStore {
  constructor(private readonly s3: Pick<S3Client, 'send'>) {}

  /**
   * The body's bytes, checked against the size and SHA-256 the message promises. An inline body
   * is decoded (bounded by that size) and checked here, throwing `QueueMessageError`; an S3 body
   * is checked while it streams (VerifyingBodyStream).
   */
  async open(message: QueueMessage): Promise<Readable> {
    const body = message.body;
    if (body.kind === 'inline') {
      const bytes = decodeInlineBody(body, message.envelope.size);
      verifyBody(message.envelope, bytes);
      return Readable.from([bytes]);
    }
    const object = await this.s3.send(new GetObjectCommand({ Bucket: body.bucket, Key: body.key }));
    if (!(object.Body instanceof Readable)) {
      throw new Error(`s3://${body.bucket}/${body.key} has no readable body`);
    }
    const source = object.Body;
    const verified = new VerifyingBodyStream({ id: message.envelope.id, size: body.size, sha256: body.sha256 });
    source.on('error', (error) => verified.destroy(error));
    verified.on('close', () => source.destroy());
    return source.pipe(verified);
  }

  async discard(message: QueueMessage): Promise<void> {
    if (message.body.kind === 's3') {
      await this.s3.send(new DeleteObjectCommand({ Bucket: message.body.bucket, Key: message.body.key }));
    }
  }
}
