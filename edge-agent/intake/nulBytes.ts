import { Transform, type TransformCallback } from 'node:stream';
import { SmtpReplyError } from '../smtpReplyError.ts';

export type NulBytePolicy = 'strip' | 'reject';

/**
 * NUL bytes in a message: no text format has them, Exchange Online and other hops refuse or
 * mangle them later (after the device saw 250, so nobody is told), and some readers take one as
 * the end of a string, which hides what follows (`<CR><LF><NUL>.<CR><LF>`). Postfix leaves this
 * to `message_strip_characters` / `message_reject_characters` (its documentation suggests `\0`
 * for both); qmail refuses. The default is `strip`, as `bareNewlines: normalize`: a NUL a
 * device's firmware appends to a string never carried meaning, and the mail still arrives.
 * `reject` refuses the message with a 550 and stores nothing.
 */
export class NulByteGuard extends Transform {
  constructor(private readonly policy: NulBytePolicy) {
    super();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    // Fast path: indexOf is a native scan and almost every chunk has no NUL.
    let at = chunk.indexOf(0);
    if (at === -1) {
      callback(null, chunk);
      return;
    }
    if (this.policy === 'reject') {
      callback(new NulByteError());
      return;
    }
    const out = Buffer.allocUnsafe(chunk.length);
    let o = 0;
    let from = 0;
    while (at !== -1) {
      o += chunk.copy(out, o, from, at);
      from = at + 1;
      at = chunk.indexOf(0, from);
    }
    o += chunk.copy(out, o, from);
    callback(null, out.subarray(0, o));
  }
}

/** The reply to a message with a NUL byte when listen.nulBytes is `reject`. */
export class NulByteError extends SmtpReplyError {
  constructor() {
    super(550, '5.6.0 Message contains a NUL byte');
    this.name = 'NulByteError';
  }
}
