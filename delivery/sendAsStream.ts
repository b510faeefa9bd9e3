import { Readable } from 'node:stream';
import { DEFAULT_MAX_HEADER_BYTES, findHeaderEnd, HeaderTooLargeError, rewriteHeaderForSendAs } from './sendAsRewrite.ts';

/**
 * The message with its header rewritten for send-as and the body streamed through untouched, so
 * a 35 MB scan is never held in memory. Works on any byte stream (spool file or S3 object).
 */
export function rewriteStreamForSendAs(source: AsyncIterable<Buffer>, sendAs: string, maxHeaderBytes = DEFAULT_MAX_HEADER_BYTES): Readable {
  return Readable.from(rewrite(source, sendAs, maxHeaderBytes), { objectMode: false });
}

async function* rewrite(source: AsyncIterable<Buffer>, sendAs: string, maxHeaderBytes: number): AsyncGenerator<Buffer> {
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
    if (end > maxHeaderBytes) {
      throw new HeaderTooLargeError('the message', maxHeaderBytes);
    }
    if (end !== -1) {
      yield rewriteHeaderForSendAs(buffered.subarray(0, end), sendAs);
      if (end < buffered.length) {
        yield buffered.subarray(end);
      }
      break;
    }
    if (length > maxHeaderBytes) {
      throw new HeaderTooLargeError('the message', maxHeaderBytes);
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
