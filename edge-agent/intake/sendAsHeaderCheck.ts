import { Transform, type TransformCallback } from 'node:stream';
import { HeaderSectionScanner, MAX_HEADER_SECTION_BYTES } from '../../delivery/headerSection.ts';
import { SmtpReplyError } from '../smtpReplyError.ts';

/**
 * The reply to a message from a send-as client whose header section does not end within
 * MAX_HEADER_SECTION_BYTES: its From could not be rewritten at delivery, so it is refused while
 * the device still waits for the reply, instead of a 250 and a failure later.
 */
export class SendAsHeaderTooLargeError extends SmtpReplyError {
  constructor(readonly limitBytes: number) {
    super(552, `5.3.4 Message header has no end within ${limitBytes} bytes, too large to send as this client's address`);
    this.name = 'SendAsHeaderTooLargeError';
  }
}

/**
 * Passes the message through while watching for the end of its header section (the same rule
 * the delivery path uses, delivery/headerSection.ts); holds no bytes. Only for clients with
 * sendAs: without it, the relay sends the header as it came and Exchange Online judges it.
 */
export class SendAsHeaderCheck extends Transform {
  private readonly scanner = new HeaderSectionScanner();

  constructor(private readonly limitBytes = MAX_HEADER_SECTION_BYTES) {
    super();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    if (!this.scanner.end) {
      const end = this.scanner.push(chunk);
      if (end ? end.fieldsEnd > this.limitBytes : this.scanner.bytesSeen > this.limitBytes) {
        callback(new SendAsHeaderTooLargeError(this.limitBytes));
        return;
      }
    }
    callback(null, chunk);
  }
}
