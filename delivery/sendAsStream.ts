import { Readable } from 'node:stream';
import { HeaderSectionScanner, HeaderTooLargeError, MAX_HEADER_SECTION_BYTES } from './headerSection.ts';
import { rewriteFields, type HeaderRewrite } from './sendAsRewrite.ts';

/**
 * The message with its header section rewritten (send-as, missing From / Date / Message-ID) and
 * the body streamed through untouched, so a 35 MB scan is never held in memory. Works on any
 * byte stream (spool file or S3 object).
 *
 * A header section with no end within `maxHeaderBytes`: with send-as the message cannot be sent
 * as the client's address, a HeaderTooLargeError (permanent: it will not change on a retry);
 * without send-as the bytes go on as they are and the upstream judges them.
 */
export function rewriteMessageStream(source: AsyncIterable<Buffer>, rewrite: HeaderRewrite, maxHeaderBytes = MAX_HEADER_SECTION_BYTES): Readable {
  return Readable.from(rewriteStream(source, rewrite, maxHeaderBytes), { objectMode: false });
}

/** Send-as only, nothing added: rewriteMessageStream with `{ sendAs }`. */
export function rewriteStreamForSendAs(source: AsyncIterable<Buffer>, sendAs: string, maxHeaderBytes = MAX_HEADER_SECTION_BYTES): Readable {
  return rewriteMessageStream(source, { sendAs }, maxHeaderBytes);
}

async function* rewriteStream(source: AsyncIterable<Buffer>, rewrite: HeaderRewrite, maxHeaderBytes: number): AsyncGenerator<Buffer> {
  const iterator = source[Symbol.asyncIterator]();
  const scanner = new HeaderSectionScanner();
  const parts: Buffer[] = [];
  let length = 0;
  for (;;) {
    const next = await iterator.next();
    const end = next.done ? scanner.finish() : scanner.push(next.value);
    if (!next.done) {
      parts.push(next.value);
      length += next.value.length;
    }
    if (end && end.fieldsEnd <= maxHeaderBytes) {
      const buffered = Buffer.concat(parts, length);
      yield rewriteFields(buffered.subarray(0, end.fieldsEnd), rewrite);
      if (end.bodyStart < buffered.length) {
        yield buffered.subarray(end.bodyStart);
      }
      break;
    }
    if (end || length > maxHeaderBytes) {
      if (rewrite.sendAs !== undefined) {
        throw new HeaderTooLargeError('the message', maxHeaderBytes);
      }
      yield Buffer.concat(parts, length);
      break;
    }
  }
  for (;;) {
    const next = await iterator.next();
    if (next.done) {
      return;
    }
    yield next.value;
  }
}
