import { Transform, type TransformCallback } from 'node:stream';
import { SmtpReplyError } from '../smtpReplyError.ts';

const CR = 0x0d;
const LF = 0x0a;
const CRLF = Buffer.from('\r\n');

export type BareNewlinePolicy = 'normalize' | 'reject';

/**
 * Makes every line end CRLF before a message reaches the spool, or notes that one was not.
 *
 * smtp-server only ends DATA on <CR><LF>.<CR><LF>, so a bare CR or LF can never end a message
 * or start a command. What remains is the body: Exchange Online and other hops may treat a bare
 * LF as a line end, so bytes like <LF>.<LF> must not reach them raw. With `normalize` each bare
 * CR or LF becomes CRLF, and the submitter dot-stuffs such a "." line again when it forwards, so
 * the upstream sees one message carrying the text. With `reject` the transform passes bytes
 * through untouched and, once the whole body has been read, fails the stream with a 550 so that
 * nothing is stored.
 */
export class LineEndingGuard extends Transform {
  /** True once a CR not followed by LF, or an LF not preceded by CR, has been seen. */
  sawBareNewline = false;
  private pendingCr = false;

  constructor(private readonly policy: BareNewlinePolicy) {
    super();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    if (chunk.length === 0) {
      // A pending CR is decided by the next byte, and an empty chunk has none.
      callback();
      return;
    }
    callback(null, this.policy === 'normalize' ? this.normalize(chunk) : this.inspect(chunk));
  }

  override _flush(callback: TransformCallback): void {
    if (this.pendingCr) {
      this.sawBareNewline = true;
      this.pendingCr = false;
      if (this.policy === 'normalize') {
        this.push(CRLF);
      }
    }
    if (this.policy === 'reject' && this.sawBareNewline) {
      callback(new BareNewlineError());
      return;
    }
    callback();
  }

  private inspect(chunk: Buffer): Buffer {
    if (this.sawBareNewline) {
      return chunk;
    }
    let i = 0;
    if (this.pendingCr) {
      if (chunk[0] !== LF) {
        this.sawBareNewline = true;
        return chunk;
      }
      i = 1;
    }
    this.pendingCr = false;
    for (; i < chunk.length; i++) {
      const byte = chunk[i];
      if (byte === LF && (i === 0 ? true : chunk[i - 1] !== CR)) {
        this.sawBareNewline = true;
        return chunk;
      }
      if (byte === CR) {
        if (i === chunk.length - 1) {
          this.pendingCr = true;
        } else if (chunk[i + 1] !== LF) {
          this.sawBareNewline = true;
          return chunk;
        }
      }
    }
    return chunk;
  }

  private normalize(chunk: Buffer): Buffer {
    // Fast path: most devices send proper CRLF and the chunk needs no copy.
    if (!this.pendingCr && isAllCrlf(chunk)) {
      return chunk;
    }
    const out = Buffer.allocUnsafe(chunk.length * 2 + 2);
    let o = 0;
    let i = 0;
    if (this.pendingCr) {
      this.pendingCr = false;
      out[o++] = CR;
      out[o++] = LF;
      if (chunk[0] === LF) {
        i = 1;
      } else {
        this.sawBareNewline = true;
      }
    }
    for (; i < chunk.length; i++) {
      const byte = chunk[i] as number;
      if (byte === CR) {
        if (i === chunk.length - 1) {
          this.pendingCr = true;
          continue;
        }
        out[o++] = CR;
        out[o++] = LF;
        if (chunk[i + 1] === LF) {
          i++;
        } else {
          this.sawBareNewline = true;
        }
      } else if (byte === LF) {
        this.sawBareNewline = true;
        out[o++] = CR;
        out[o++] = LF;
      } else {
        out[o++] = byte;
      }
    }
    return out.subarray(0, o);
  }
}

function isAllCrlf(chunk: Buffer): boolean {
  let at = chunk.indexOf(LF);
  while (at !== -1) {
    if (at === 0 || chunk[at - 1] !== CR) {
      return false;
    }
    at = chunk.indexOf(LF, at + 1);
  }
  at = chunk.indexOf(CR);
  while (at !== -1) {
    // A CR in the last byte is decided by the next chunk, so the slow path has to carry it.
    if (at === chunk.length - 1 || chunk[at + 1] !== LF) {
      return false;
    }
    at = chunk.indexOf(CR, at + 1);
  }
  return true;
}

/** The reply to a message with a bare CR or LF when listen.bareNewlines is `reject`. */
export class BareNewlineError extends SmtpReplyError {
  constructor() {
    super(550, '5.6.0 Message contains a bare CR or LF; line ends must be CRLF');
    this.name = 'BareNewlineError';
  }
}
