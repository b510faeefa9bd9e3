import { readdir } from 'node:fs/promises';

/** Every bare CR or bare LF, for asserting that stored bytes have CRLF line ends only. */
export const BARE_CR_OR_LF = /\r(?!\n)|(?<!\r)\n/;

/** The bytes with every bare LF turned into CRLF (bytes are handled as latin1, one char per byte). */
export function bareLfToCrlf(bytes: Buffer): Buffer {
  return Buffer.from(bytes.toString('latin1').replace(/(?<!\r)\n/g, '\r\n'), 'latin1');
}

/**
 * DATA as a device transmits it: every line that starts with "." gets one more, and the end
 * CRLF.CRLF follows. smtp-server unstuffs a dot after any LF, so lines ended by a bare LF are
 * stuffed too. A last line ended by a bare LF has that LF sent as the CRLF that opens the
 * terminator (only CRLF.CRLF ends DATA); a message without a final line end gets one.
 */
export function dataPayload(message: Buffer): Buffer {
  let text = message.toString('latin1').replace(/(^|\n)\./g, '$1..');
  if (text.endsWith('\r\n')) {
    text += '.\r\n';
  } else if (text.endsWith('\n')) {
    text = `${text.slice(0, -1)}\r\n.\r\n`;
  } else {
    text += '\r\n.\r\n';
  }
  return Buffer.from(text, 'latin1');
}

/** A folder's entries, sorted; none when it does not exist (yet). */
export async function listDir(dir: string): Promise<string[]> {
  try {
    return (await readdir(dir)).sort();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
      return [];
    }
    throw error;
  }
}
