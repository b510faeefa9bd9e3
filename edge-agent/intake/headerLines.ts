import { Transform, type TransformCallback } from 'node:stream';
import { SmtpReplyError } from '../smtpReplyError.ts';

/**
 * RFC 5322 §2.1.1: a header line MUST NOT be longer than 998 characters without its CRLF.
 * Exchange Online refuses such a message, but only after the device got its 250, so the device
 * is never told and the message bounces or expires; refusing it here tells the device at once.
 * Body lines are left alone (a relay must not break a message; Exchange wraps or encodes them).
 */
export const MAX_HEADER_LINE = 998;

const LF = 0x0a;
const CR = 0x0d;
const COLON = 0x3a;
const SP = 0x20;
const HT = 0x09;

type State = 'line start' | 'field name' | 'header line' | 'body';

/**
 * Refuses a message whose header section has a line over MAX_HEADER_LINE bytes. The header
 * section ends at the first empty line, or (as Postfix's cleanup reads it) at the first line that
 * is neither a field (`Name:`, the colon within the limit) nor the continuation of one, such as
 * a UPS's plain-text alert.
 * Sits after LineEndingGuard, so lines end in LF (CRLF, or a bare LF under `reject`). Fails as
 * soon as the limit is passed: a 20 MiB header line is never written to the spool.
 */
export class HeaderLineLimit extends Transform {
  /**
   * The first Message-ID field's value, seen on the way (for trace search): only when the field's
   * line lies within one chunk, which the header's first chunk nearly always holds.
   */
  messageId: string | undefined;
  private state: State = 'line start';
  /** Bytes of the current line so far, without its line end. */
  private length = 0;
  /** The current line's last byte was a CR (not counted if an LF follows). */
  private endsInCr = false;

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    if (this.state !== 'body' && !this.scan(chunk)) {
      callback(new HeaderLineTooLongError());
      return;
    }
    callback(null, chunk);
  }

  /** Follows the header section through the chunk; false when a line is over the limit. */
  private scan(chunk: Buffer): boolean {
    let i = 0;
    while (i < chunk.length && this.state !== 'body') {
      if (this.state === 'header line') {
        const lf = chunk.indexOf(LF, i);
        const end = lf === -1 ? chunk.length : lf;
        if (end > i) {
          this.length += end - i;
          this.endsInCr = chunk[end - 1] === CR;
        }
        // A CR at the end is the line end's, if an LF follows (now or in the next chunk).
        if (this.length - (this.endsInCr ? 1 : 0) > MAX_HEADER_LINE) return false;
        if (lf === -1) return true;
        this.newLine();
        i = lf + 1;
        continue;
      }
      const byte = chunk[i] as number;
      if (this.state === 'line start') {
        if (byte === LF || (byte === CR && (chunk[i + 1] === LF || i + 1 === chunk.length))) {
          // An empty line (or a CR that the next chunk will show to be one): the body follows.
          // A lone CR here is a bare line end under `reject`, which refuses the message anyway.
          this.state = 'body';
          return true;
        }
        this.state = byte === SP || byte === HT ? 'header line' : 'field name';
        if (this.state === 'header line') continue;
        if (this.messageId === undefined && (byte | 0x20) === M && isMessageIdField(chunk, i)) this.messageId = fieldValue(chunk, i + MESSAGE_ID.length);
      }
      // Field name: printable ASCII but the colon, up to the colon (RFC 5322 §2.2).
      if (byte === COLON && this.length > 0) {
        this.state = 'header line';
        continue;
      }
      if (byte < 0x21 || byte > 0x7e || byte === COLON) {
        this.state = 'body';
        return true;
      }
      this.length += 1;
      if (this.length > MAX_HEADER_LINE) {
        // No colon in 998 bytes: no field (such as a body sent as one endless line), so the body.
        this.state = 'body';
        return true;
      }
      i += 1;
    }
    return true;
  }

  private newLine(): void {
    this.state = 'line start';
    this.length = 0;
    this.endsInCr = false;
  }
}

const M = 0x6d;
const MESSAGE_ID = 'message-id:';

function isMessageIdField(chunk: Buffer, at: number): boolean {
  return chunk.length - at > MESSAGE_ID.length && chunk.toString('latin1', at, at + MESSAGE_ID.length).toLowerCase() === MESSAGE_ID;
}

/** The field's value up to its line end, when the line ends in this chunk (and is within the limit). */
function fieldValue(chunk: Buffer, from: number): string | undefined {
  const lf = chunk.indexOf(LF, from);
  if (lf === -1 || lf - from > MAX_HEADER_LINE) return undefined;
  const value = chunk.toString('latin1', from, lf).trim();
  return value === '' ? undefined : value;
}

/** The reply to a message whose header section has a line over MAX_HEADER_LINE. */
export class HeaderLineTooLongError extends SmtpReplyError {
  constructor() {
    super(550, `5.6.0 Message has a header line longer than ${MAX_HEADER_LINE} characters`);
    this.name = 'HeaderLineTooLongError';
  }
}
