import { Transform, type TransformCallback } from 'node:stream';
import { SmtpReplyError } from '../smtpReplyError.ts';

/** Fails the body stream as soon as it passes the limit, so an oversized message is never stored. */
export class SizeLimit extends Transform {
  private seen = 0;

  constructor(private readonly maxBytes: number) {
    super();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.seen += chunk.length;
    if (this.seen > this.maxBytes) {
      callback(new SmtpReplyError(552, '5.3.4 Message size exceeds fixed maximum message size'));
      return;
    }
    callback(null, chunk);
  }
}
