import { Transform, type TransformCallback } from 'node:stream';
import { SmtpReplyError } from '../smtpReplyError.ts';

/**
 * Fails the body stream as soon as it passes the limit, so an oversized message is never stored.
 * Also reports every `progressBytes` received (the intake's no-progress deadline).
 */
export class SizeLimit extends Transform {
  private seen = 0;
  private nextProgress: number;

  constructor(
    private readonly maxBytes: number,
    private readonly progressBytes = Infinity,
    private readonly onProgress: () => void = () => undefined,
  ) {
    super();
    this.nextProgress = progressBytes;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.seen += chunk.length;
    if (this.seen >= this.nextProgress) {
      this.nextProgress = this.seen + this.progressBytes;
      this.onProgress();
    }
    if (this.seen > this.maxBytes) {
      callback(new SmtpReplyError(552, '5.3.4 Message size exceeds fixed maximum message size'));
      return;
    }
    callback(null, chunk);
  }
}
