import { close as closeCallback, fsync as fsyncCallback, open as openCallback, writev as writevCallback } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { promisify } from 'node:util';
import { messageEnvelopeSchema, type MessageEnvelope } from '../../contract/messageEnvelope.ts';

/**
 * One spooled message is one file: the body exactly as received, then its envelope as JSON, then
 * a fixed-size footer giving the JSON's length. One file means one fsync before the 250 (like a
 * Postfix queue file), and the body keeps offset 0, so it can be streamed without a copy.
 *
 *   <body: envelope.size bytes><envelope JSON><"\n#smarthost-spool-1 " + 10-digit length + "\n">
 *
 * A file only reaches queue/ by a rename after it was written whole and fsync'd, so a footer is
 * only ever parsed from a complete file; the sizes must still add up, or the file is refused.
 */
const MAGIC = '\n#smarthost-spool-1 ';
const FOOTER_BYTES = MAGIC.length + 10 + 1;

export function envelopeTrailer(envelope: MessageEnvelope): Buffer {
  const json = Buffer.from(JSON.stringify(envelope), 'utf8');
  const footer = Buffer.from(`${MAGIC}${String(json.length).padStart(10, '0')}\n`, 'latin1');
  return Buffer.concat([json, footer]);
}

export class SpoolFileError extends Error {
  constructor(path: string, problem: string) {
    super(`${path}: not a smarthost spool file (${problem})`);
    this.name = 'SpoolFileError';
  }
}

/** Reads the envelope from the end of a spool file. */
export async function readEnvelopeFrom(handle: FileHandle, path: string): Promise<MessageEnvelope> {
  const { size: fileSize } = await handle.stat();
  if (fileSize < FOOTER_BYTES) {
    throw new SpoolFileError(path, 'too short');
  }
  const footer = Buffer.alloc(FOOTER_BYTES);
  await handle.read(footer, 0, FOOTER_BYTES, fileSize - FOOTER_BYTES);
  const text = footer.toString('latin1');
  const length = Number(text.slice(MAGIC.length, -1));
  if (!text.startsWith(MAGIC) || !text.endsWith('\n') || !Number.isInteger(length) || length > fileSize - FOOTER_BYTES) {
    throw new SpoolFileError(path, 'no envelope footer');
  }
  const json = Buffer.alloc(length);
  await handle.read(json, 0, length, fileSize - FOOTER_BYTES - length);
  const envelope = messageEnvelopeSchema.parse(JSON.parse(json.toString('utf8')));
  if (envelope.size !== fileSize - FOOTER_BYTES - length) {
    throw new SpoolFileError(path, `body is ${fileSize - FOOTER_BYTES - length} bytes, envelope says ${envelope.size}`);
  }
  return envelope;
}

// Plain descriptors rather than FileHandle: one file per message, and FileHandle's promise
// machinery costs more than the descriptor calls themselves. Never the *Sync calls: under a
// stream of fsyncs, creating a file waits for the journal and would stall every connection.
const writevFd = promisify(writevCallback);
export const openFd = promisify(openCallback);
export const fsyncFd = promisify(fsyncCallback);
export const closeFd = promisify(closeCallback);

/** Writes every buffer at the descriptor's position, however the kernel splits the writes. */
export async function writeAll(fd: number, buffers: Buffer[]): Promise<void> {
  let pending = buffers.filter((b) => b.length > 0);
  while (pending.length > 0) {
    const { bytesWritten } = await writevFd(fd, pending);
    let left = bytesWritten;
    while (pending.length > 0 && left >= (pending[0] as Buffer).length) {
      left -= (pending[0] as Buffer).length;
      pending = pending.slice(1);
    }
    if (left > 0 && pending.length > 0) {
      pending = [(pending[0] as Buffer).subarray(left), ...pending.slice(1)];
    }
    if (bytesWritten === 0 && pending.length > 0) {
      throw Object.assign(new Error('write returned 0 bytes'), { code: 'EIO' });
    }
  }
}
