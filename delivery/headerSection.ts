/** Devices write headers of a few hundred bytes; a megabyte of fields without an end is not a header. */
export const MAX_HEADER_SECTION_BYTES = 1024 * 1024;

/** Where a message's header section ends, in offsets from the message's first byte. */
export interface HeaderSectionEnd {
  /** Just past the last header field (its CRLF, if it had one). */
  fieldsEnd: number;
  /** The body's first byte: past the blank line when there is one, else `fieldsEnd`. */
  bodyStart: number;
}

/** The header section has not ended within `limitBytes` (a send-as rewrite cannot be made). */
export class HeaderTooLargeError extends Error {
  constructor(
    readonly source: string,
    readonly limitBytes: number,
  ) {
    super(`the header of ${source} has no end within ${limitBytes} bytes`);
    this.name = 'HeaderTooLargeError';
  }
}

const CR = 0x0d;
const LF = 0x0a;
const SP = 0x20;
const HT = 0x09;
const COLON = 0x3a;

type State = 'lineStart' | 'blankCr' | 'name' | 'spaceBeforeColon' | 'restOfLine';

/**
 * Finds the end of the header section as Postfix's cleanup does: the header ends at the blank
 * line, or before the first line that is neither a header field (RFC 5322 field name, optional
 * white space, colon) nor the continuation of one. So `UPS on battery\r\nRuntime left: 12 min\r\n`
 * has an empty header and all of it is body. Fed chunk by chunk, it holds no bytes: the intake
 * runs it over a message as it arrives, the delivery path over the spooled bytes.
 */
export class HeaderSectionScanner {
  private state: State = 'lineStart';
  private lineStart = 0;
  private offset = 0;
  private sawField = false;
  private result: HeaderSectionEnd | undefined;

  /** The end, once a chunk has shown it; undefined while the header may go on. */
  get end(): HeaderSectionEnd | undefined {
    return this.result;
  }

  /** Bytes fed so far. */
  get bytesSeen(): number {
    return this.offset;
  }

  push(chunk: Buffer): HeaderSectionEnd | undefined {
    if (this.result) {
      return this.result;
    }
    for (let i = 0; i < chunk.length; i++) {
      const at = this.offset + i;
      const byte = chunk[i] as number;
      switch (this.state) {
        case 'lineStart':
          if (byte === CR) this.state = 'blankCr';
          else if (byte === SP || byte === HT) {
            if (!this.sawField) return this.stop(i, { fieldsEnd: at, bodyStart: at });
            this.state = 'restOfLine';
          } else if (isNameByte(byte)) this.state = 'name';
          else return this.stop(i, { fieldsEnd: this.lineStart, bodyStart: this.lineStart });
          break;
        case 'blankCr':
          if (byte === LF) return this.stop(i, { fieldsEnd: this.lineStart, bodyStart: at + 1 });
          return this.stop(i, { fieldsEnd: this.lineStart, bodyStart: this.lineStart });
        case 'name':
        case 'spaceBeforeColon':
          if (byte === COLON) {
            this.sawField = true;
            this.state = 'restOfLine';
          } else if (byte === SP || byte === HT) this.state = 'spaceBeforeColon';
          else if (this.state === 'spaceBeforeColon' || !isNameByte(byte)) {
            return this.stop(i, { fieldsEnd: this.lineStart, bodyStart: this.lineStart });
          }
          break;
        case 'restOfLine':
          if (byte === LF) {
            this.lineStart = at + 1;
            this.state = 'lineStart';
          }
          break;
      }
    }
    this.offset += chunk.length;
    return undefined;
  }

  /** The end at the end of the message: a message that is all fields is all header. */
  finish(): HeaderSectionEnd {
    if (this.result) {
      return this.result;
    }
    // A last line cut off inside a field is a field without its CRLF; anything else is body.
    const fieldsEnd = this.state === 'restOfLine' ? this.offset : this.state === 'lineStart' ? this.offset : this.lineStart;
    this.result = { fieldsEnd, bodyStart: fieldsEnd };
    return this.result;
  }

  private stop(index: number, end: HeaderSectionEnd): HeaderSectionEnd {
    this.offset += index + 1;
    this.result = end;
    return end;
  }
}

/** RFC 5322 field-name characters: printable ASCII except colon (space is not printable here). */
function isNameByte(byte: number): boolean {
  return byte >= 0x21 && byte <= 0x7e && byte !== COLON;
}

/** The header section's end in a whole message (or a prefix known to hold all of its header). */
export function findHeaderSection(message: Buffer): HeaderSectionEnd {
  const scanner = new HeaderSectionScanner();
  return scanner.push(message) ?? scanner.finish();
}
