import { Readable } from 'node:stream';
import { DeleteObjectCommand, GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { decodeInlineBody, type QueueMessage } from '../../contract/queueMessage.ts';

/** Opens a queue message's body, wherever it travelled; deletes the S3 copy once delivered. */
export class BodyStore {
  constructor(private readonly s3: Pick<S3Client, 'send'>) {}

  async open(message: QueueMessage): Promise<Readable> {
    const body = message.body;
    if (body.kind === 'inline') {
      return Readable.from([decodeInlineBody(body)]);
    }
    const object = await this.s3.send(new GetObjectCommand({ Bucket: body.bucket, Key: body.key }));
    if (!(object.Body instanceof Readable)) {
      throw new Error(`s3://${body.bucket}/${body.key} has no readable body`);
    }
    return object.Body;
  }

  async discard(message: QueueMessage): Promise<void> {
    if (message.body.kind === 's3') {
      await this.s3.send(new DeleteObjectCommand({ Bucket: message.body.bucket, Key: message.body.key }));
    }
  }
}
