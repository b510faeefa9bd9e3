import { Readable } from 'node:stream';
import { findHeaderEnd, rewriteHeaderForSendAs } from './sendAsRewrite.ts';

/** A header bigger than this is not a header a device wrote; refuse rather than buffer it. */
const MAX_HEADER_BYTES = 1024 * 1024;

export class HeaderTooLargeError extends Error {
  constructor() {
    super(`message header is larger than ${MAX_HEADER_BYTES} bytes`);
    this.name = 'HeaderTooLargeError';
  }
}

/**
 * The message with its header rewritten for send-as and the body streamed through untouched, so
 * a 35 MB scan is never held in memory. Works on any byte stream (spool file or S3 object).
 */
export function rewriteStreamForSendAs(source: AsyncIterable<Buffer>, sendAs: string): Readable {
  return Readable.from(rewrite(source, sendAs), { objectMode: false });
}

async function* rewrite(source: AsyncIterable<Buffer>, sendAs: string): AsyncGenerator<Buffer> {
  const iterator = source[Symbol.asyncIterator]();
  const parts: Buffer[] = [];
  let length = 0;
  for (;;) {
    const next = await iterator.next();
    if (next.done) {
      // No blank line at all: the whole message is header.
      yield rewriteHeaderForSendAs(Buffer.concat(parts, length), sendAs);
      return;
    }
    parts.push(next.value);
    length += next.value.length;
    const buffered = Buffer.concat(parts, length);
    const end = findHeaderEnd(buffered);
    if (end !== -1) {
      yield rewriteHeaderForSendAs(buffered.subarray(0, end), sendAs);
      if (end < buffered.length) {
        yield buffered.subarray(end);
      }
      break;
    }
    if (length > MAX_HEADER_BYTES) {
      throw new HeaderTooLargeError();
    }
    parts.length = 0;
    parts.push(buffered);
  }
  for (;;) {
    const next = await iterator.next();
    if (next.done) {
      return;
    }
    yield next.value;
  }
}
