import addressparser from 'nodemailer/lib/addressparser';
import { findHeaderSection } from './headerSection.ts';

const CR = 0x0d;
const LF = 0x0a;
const CRLF = Buffer.from('\r\n', 'latin1');

interface HeaderField {
  /** Lower-cased field name; '' for a line that is not a well-formed field (kept as it is). */
  name: string;
  /** Offsets into the header: the field's first byte, the byte after its name's colon, its end (after its CRLF). */
  start: number;
  valueStart: number;
  end: number;
}

/**
 * What the relay adds to a header section that lacks it, as Postfix's cleanup does for local
 * submissions: From (the envelope sender), Date (when the relay accepted the message) and
 * Message-ID. Exchange Online refuses or mangles messages without them; devices (UPS units,
 * scripts) often send none.
 */
export interface MissingFields {
  /** The envelope sender; '' (the null sender) or an address that cannot be written plainly adds no From. */
  sender: string;
  date: string;
  /** Without the angle brackets: `id@domain`. */
  messageId: string;
}

export interface HeaderRewrite {
  /** Rewrite From for send-as (see rewriteHeaderForSendAs). */
  sendAs?: string;
  add?: MissingFields;
}

/**
 * Rewrite a header block (bytes up to and including the blank line, or the whole message if it
 * has no body) for send-as: From becomes exactly `sendAs` (keep the original display name only if
 * it does not itself look like an address — printers put 'scanner@printer.local' as display
 * name, which Exchange treats as a send-as attempt; then use no display name); if the message had
 * a From and no Reply-To, add `Reply-To:` with the original From value; if there was no From at
 * all, add `From: <sendAs>`; drop Sender unless it names `sendAs` alone. Every other header byte
 * stays identical (folding, order, 8-bit bytes).
 *
 * Details: the header ends at the blank line or before the first line that is not a field
 * (delivery/headerSection.ts), so a message that starts with its text gets a header of its own;
 * a second From field (invalid in RFC 5322) is dropped so the upstream judges one sender;
 * Reply-To is only added when the original From held an address other than `sendAs`; the result
 * always has its blank line; bytes of the body, if given, are passed on unchanged.
 * @throws RangeError when `sendAs` is not a plain address (it is written into the header).
 */
export function rewriteHeaderForSendAs(header: Buffer, sendAs: string): Buffer {
  return rewriteMessageStart(header, { sendAs });
}

/** The header section rewritten (`rewrite`), its blank line, then the rest of `start` unchanged. */
export function rewriteMessageStart(start: Buffer, rewrite: HeaderRewrite): Buffer {
  const end = findHeaderSection(start);
  return Buffer.concat([rewriteFields(start.subarray(0, end.fieldsEnd), rewrite), start.subarray(end.bodyStart)]);
}

/** `fields` is the header section without its blank line; the result ends with the blank line. */
export function rewriteFields(header: Buffer, rewrite: HeaderRewrite): Buffer {
  const address = rewrite.sendAs === undefined ? undefined : checkedAddress(rewrite.sendAs);
  const fields = splitFields(header, header.length);
  const has = (name: string): boolean => fields.some((field) => field.name === name);
  const hasReplyTo = has('reply-to');

  const out: Buffer[] = [];
  let fromWritten = false;
  for (const field of fields) {
    if (address !== undefined && field.name === 'from') {
      if (fromWritten) {
        continue;
      }
      fromWritten = true;
      const rawValue = header.subarray(field.valueStart, field.end);
      const value = unfold(rawValue);
      out.push(fromLine(displayNameToKeep(value), address));
      if (!hasReplyTo && namesOtherAddress(value, address)) {
        // The original bytes, folding and all: replies still reach whoever the device named.
        out.push(Buffer.from('Reply-To:', 'latin1'), withLineEnd(rawValue));
      }
    } else if (address !== undefined && field.name === 'sender') {
      if (namesOnly(unfold(header.subarray(field.valueStart, field.end)), address)) {
        out.push(withLineEnd(header.subarray(field.start, field.end)));
      }
    } else {
      out.push(withLineEnd(header.subarray(field.start, field.end)));
    }
  }
  if (address !== undefined && !fromWritten) {
    out.push(fromLine('', address));
  }
  const add = rewrite.add;
  if (add) {
    const sender = plainAddress(add.sender);
    if (address === undefined && sender !== undefined && !has('from')) {
      out.push(fromLine('', sender));
    }
    if (!has('date')) {
      out.push(Buffer.from(`Date: ${add.date}\r\n`, 'latin1'));
    }
    if (!has('message-id')) {
      out.push(Buffer.from(`Message-ID: <${add.messageId}>\r\n`, 'utf8'));
    }
  }
  out.push(CRLF);
  return Buffer.concat(out);
}

/** Fields of header[0, limit): a line starting with space or tab continues the field above it. */
function splitFields(header: Buffer, limit: number): HeaderField[] {
  const fields: HeaderField[] = [];
  let pos = 0;
  while (pos < limit) {
    const crlf = header.indexOf(CRLF, pos);
    const lineEnd = crlf === -1 || crlf >= limit ? limit : crlf;
    const next = Math.min(lineEnd + CRLF.length, limit);
    const first = header[pos];
    const current = fields[fields.length - 1];
    if ((first === 0x20 || first === 0x09) && current) {
      current.end = next;
    } else {
      const colon = header.indexOf(0x3a, pos);
      const name = colon !== -1 && colon < lineEnd ? header.toString('latin1', pos, colon).replace(/[ \t]+$/, '') : '';
      // RFC 5322 field names are printable ASCII without colon or space; anything else (an mbox
      // "From " line, a stray text line) is not a field and is passed on untouched.
      const valid = /^[\x21-\x39\x3b-\x7e]+$/.test(name);
      fields.push({ name: valid ? name.toLowerCase() : '', start: pos, valueStart: valid ? colon + 1 : pos, end: next });
    }
    pos = next;
  }
  return fields;
}

/**
 * RFC 5322 unfolding: a CRLF followed by white space is removed. Read as latin1 so bytes map 1:1
 * to chars; trimmed of ASCII white space only, since JavaScript's trim() would also eat 0xA0, the
 * last byte of UTF-8 'à'.
 */
function unfold(rawValue: Buffer): string {
  return rawValue
    .toString('latin1')
    .replace(/\r\n(?=[ \t])/g, '')
    .replace(/^[ \t\r\n]+|[ \t\r\n]+$/g, '');
}

function withLineEnd(bytes: Buffer): Buffer {
  if (bytes.length >= 2 && bytes[bytes.length - 2] === CR && bytes[bytes.length - 1] === LF) {
    return bytes;
  }
  // Only the last line of a message without a body can lack its CRLF; new lines follow it now.
  return Buffer.concat([bytes, bytes[bytes.length - 1] === CR ? Buffer.from([LF]) : CRLF]);
}

const PLAIN_PHRASE = /^[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~\x80-\xff]+(?: [A-Za-z0-9!#$%&'*+\-/=?^_`{|}~\x80-\xff]+)*$/;
const LOOKS_LIKE_ADDRESS = /\S@\S/;

/**
 * addressparser trims with JavaScript's notion of white space, which includes 0xA0; in a latin1
 * string that byte is often half of a UTF-8 character, so it is hidden from the parser.
 */
const NBSP_STAND_IN = '\ue0a0';

function mailboxes(value: string): { name: string; address: string }[] {
  return addressparser(value.replace(/\xa0/g, NBSP_STAND_IN), { flatten: true }).map((mailbox) => ({
    name: mailbox.name.replaceAll(NBSP_STAND_IN, '\xa0'),
    address: mailbox.address.replaceAll(NBSP_STAND_IN, '\xa0'),
  }));
}

/** The first mailbox's display name, or '' when it has none or it looks like an address. */
function displayNameToKeep(fromValue: string): string {
  const name = (mailboxes(fromValue)[0]?.name ?? '')
    .replace(/[\x00-\x1f\x7f]+/g, ' ')
    .replace(/[ \t]+/g, ' ')
    .replace(/^ | $/g, '');
  return LOOKS_LIKE_ADDRESS.test(name) ? '' : name;
}

/** `name` is latin1 (the original bytes); the address is UTF-8, as RFC 6532 headers carry it. */
function fromLine(name: string, address: string): Buffer {
  if (!name) {
    return Buffer.from(`From: ${address}\r\n`, 'utf8');
  }
  const phrase = PLAIN_PHRASE.test(name) ? name : `"${name.replace(/[\\"]/g, '\\$&')}"`;
  return Buffer.concat([Buffer.from(`From: ${phrase} <`, 'latin1'), Buffer.from(`${address}>\r\n`, 'utf8')]);
}

function addressesIn(value: string): string[] {
  return mailboxes(value)
    .map((mailbox) => mailbox.address.toLowerCase())
    .filter((candidate) => candidate.includes('@'));
}

/** True when the field value names an address and some address in it is not `address`. */
function namesOtherAddress(value: string, address: string): boolean {
  return addressesIn(value).some((candidate) => candidate !== address.toLowerCase());
}

/** Only a Sender that agrees with the new From survives: anything else would name a second party. */
function namesOnly(value: string, address: string): boolean {
  const named = addressesIn(value);
  return named.length > 0 && named.every((candidate) => candidate === address.toLowerCase());
}

const PLAIN_ADDRESS = /^[^\s<>()[\]\\,;:"@\x00-\x1f\x7f]+@[^\s<>()[\]\\,;:"@\x00-\x1f\x7f]+$/;

/** The address when it can be written into a header field as it is. */
export function plainAddress(candidate: string): string | undefined {
  const address = candidate.trim();
  return PLAIN_ADDRESS.test(address) ? address : undefined;
}

function checkedAddress(sendAs: string): string {
  const address = plainAddress(sendAs);
  if (address === undefined) {
    throw new RangeError(`invalid send-as address ${JSON.stringify(sendAs)}: expected a plain address such as scanner@contoso.com`);
  }
  return address;
}
