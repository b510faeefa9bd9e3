import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import addressparser from 'nodemailer/lib/addressparser';
import { findHeaderSection } from '../../delivery/headerSection.ts';
import { rewriteFields, rewriteHeaderForSendAs } from '../../delivery/sendAsRewrite.ts';
import { integerFromEnv, SeededRandom } from '../../testbed/helpers/seededRandom.ts';

const FIXTURES = new URL('../fixtures/devices/', import.meta.url);

/** Header text written as latin1, so '\xc3\xbc' below is the two bytes of UTF-8 'ü'. */
function bytes(text: string): Buffer {
  return Buffer.from(text, 'latin1');
}

/** What the intake does before spooling: every bare CR or LF becomes CRLF. Byte-wise, no decoding. */
function toCrlf(raw: Buffer): Buffer {
  return bytes(raw.toString('latin1').replace(/\r\n|\r|\n/g, '\r\n'));
}

async function fixture(name: string): Promise<Buffer> {
  return toCrlf(await readFile(new URL(name, FIXTURES)));
}

function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

async function sha256OfStream(stream: AsyncIterable<Buffer>): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of stream) {
    hash.update(chunk);
  }
  return hash.digest('hex');
}

function headerOf(message: Buffer): Buffer {
  return message.subarray(0, findHeaderSection(message).bodyStart);
}

/** Asserts on text for a readable diff, then on bytes, which is what counts. */
function assertSameBytes(actual: Buffer, expected: Buffer): void {
  assert.equal(actual.toString('latin1'), expected.toString('latin1'));
  assert.ok(actual.equals(expected));
}

describe('findHeaderSection', () => {
  it('ends the header at the blank line', () => {
    assert.deepEqual(findHeaderSection(bytes('Subject: x\r\n\r\nbody\r\n')), { fieldsEnd: 12, bodyStart: 14 });
  });

  it('finds the first blank line, not one in the body', () => {
    assert.deepEqual(findHeaderSection(bytes('A: 1\r\nB: 2\r\n\r\nline\r\n\r\nmore')), { fieldsEnd: 12, bodyStart: 14 });
  });

  it('takes a message that is all fields for all header', () => {
    assert.deepEqual(findHeaderSection(bytes('Subject: x\r\nTo: y\r\n')), { fieldsEnd: 19, bodyStart: 19 });
    assert.deepEqual(findHeaderSection(bytes('Subject: x\r\nTo: y')), { fieldsEnd: 17, bodyStart: 17 });
    assert.deepEqual(findHeaderSection(Buffer.alloc(0)), { fieldsEnd: 0, bodyStart: 0 });
  });

  it('sees an empty header when the message starts with the blank line', () => {
    assert.deepEqual(findHeaderSection(bytes('\r\nbody\r\n\r\nmore')), { fieldsEnd: 0, bodyStart: 2 });
  });

  it('starts the body at a first line that is not a field, as Postfix does (UPS units, scripts)', () => {
    assert.deepEqual(findHeaderSection(bytes('UPS on battery\r\nRuntime left: 12 min\r\n')), { fieldsEnd: 0, bodyStart: 0 });
    assert.deepEqual(findHeaderSection(bytes('From sender@printer.local Fri Nov 27 09:14:02 2026\r\nSubject: s\r\n\r\n')), { fieldsEnd: 0, bodyStart: 0 });
    assert.deepEqual(findHeaderSection(bytes(' folded without a field\r\n')), { fieldsEnd: 0, bodyStart: 0 });
    assert.deepEqual(findHeaderSection(bytes(': no name\r\n')), { fieldsEnd: 0, bodyStart: 0 });
  });

  it('ends the header before a later line that is not a field, keeping folded lines with their field', () => {
    assert.deepEqual(findHeaderSection(bytes('Subject: a\r\n b\r\nTo : y\r\nnot a field\r\nX: 1\r\n')), { fieldsEnd: 24, bodyStart: 24 });
  });

  it('does not take LF LF for the blank line (the spool holds CRLF only): the body starts at the bare LF', () => {
    assert.deepEqual(findHeaderSection(bytes('Subject: x\n\nbody')), { fieldsEnd: 11, bodyStart: 11 });
  });
});

describe('rewriteFields adds what Postfix cleanup adds', () => {
  const add = { sender: 'ups@site.example', date: 'Thu, 03 Dec 2026 19:53:50 +0000', messageId: 'abcdefgh@site.example' };

  it('adds From (the envelope sender), Date and Message-ID to an empty header', () => {
    assertSameBytes(
      rewriteFields(Buffer.alloc(0), { add }),
      bytes('From: ups@site.example\r\nDate: Thu, 03 Dec 2026 19:53:50 +0000\r\nMessage-ID: <abcdefgh@site.example>\r\n\r\n'),
    );
  });

  it('adds only what is missing, in any case of the field names', () => {
    assertSameBytes(rewriteFields(bytes('FROM: a@b.c\r\nmessage-id: <x@y>\r\n'), { add }), bytes('FROM: a@b.c\r\nmessage-id: <x@y>\r\nDate: Thu, 03 Dec 2026 19:53:50 +0000\r\n\r\n'));
  });

  it('adds no From for the null sender, and the send-as From instead of the sender', () => {
    assertSameBytes(rewriteFields(bytes('Date: x\r\nMessage-ID: <x@y>\r\n'), { add: { ...add, sender: '' } }), bytes('Date: x\r\nMessage-ID: <x@y>\r\n\r\n'));
    assertSameBytes(
      rewriteFields(bytes('Date: x\r\nMessage-ID: <x@y>\r\n'), { sendAs: 'ups@contoso.com', add }),
      bytes('Date: x\r\nMessage-ID: <x@y>\r\nFrom: ups@contoso.com\r\n\r\n'),
    );
  });
});

describe('rewriteHeaderForSendAs with the device fixtures', () => {
  it('drops a display name that is itself an address (scanner) and keeps the original as Reply-To', async () => {
    const header = headerOf(await fixture('scanner-lf-only.eml'));
    const expected = bytes(
      'From: scanner@contoso.com\r\n' +
        'Reply-To: "scanner@printer.local" <scanner@printer.local>\r\n' +
        'To: alice@contoso.com\r\n' +
        'Subject: Scanned from MFP-2F\r\n' +
        'MIME-Version: 1.0\r\n' +
        'Content-Type: multipart/mixed; boundary="----=_MFP_0001"\r\n' +
        '\r\n',
    );
    assertSameBytes(rewriteHeaderForSendAs(header, 'scanner@contoso.com'), expected);
  });

  it('adds a From to a message that has none (ups-alert), and no Reply-To', async () => {
    const header = headerOf(await fixture('ups-alert-minimal.eml'));
    assertSameBytes(rewriteHeaderForSendAs(header, 'ups@contoso.com'), bytes('Subject: UPS on battery power\r\nFrom: ups@contoso.com\r\n\r\n'));
  });

  it('keeps the 8-bit Subject bytes of the fax untouched and its plain display name', async () => {
    const header = headerOf(await fixture('fax-8bit-headers.eml'));
    const expected = bytes(
      'From: Fax Service <fax-relay@contoso.com>\r\n' +
        'Reply-To: Fax Service <fax@contoso.com>\r\n' +
        'To: empfang@contoso.com\r\n' +
        'Subject: Fax von +49 30 1234567 \xe2\x80\x93 3 Seiten, Gr\xc3\xbc\xc3\x9fe\r\n' +
        'Date: Fri, 27 Nov 2026 09:14:02 +0100\r\n' +
        'MIME-Version: 1.0\r\n' +
        'Content-Type: text/plain; charset=windows-1252\r\n' +
        'Content-Transfer-Encoding: 8bit\r\n' +
        '\r\n',
    );
    assertSameBytes(rewriteHeaderForSendAs(header, 'fax-relay@contoso.com'), expected);
  });

  it('keeps an existing Reply-To and adds none (many-recipients copier)', async () => {
    const original = headerOf(await fixture('mfp-many-recipients-bcc-header.eml')).toString('latin1');
    const header = bytes(original.replace('Cc: manager@contoso.com\r\n', 'Cc: manager@contoso.com\r\nReply-To: helpdesk@contoso.com\r\n'));
    const expected = bytes(
      original
        .replace('From: Copier <copier@contoso.com>\r\n', 'From: Copier <relay@contoso.com>\r\n')
        .replace('Cc: manager@contoso.com\r\n', 'Cc: manager@contoso.com\r\nReply-To: helpdesk@contoso.com\r\n'),
    );
    const rewritten = rewriteHeaderForSendAs(header, 'relay@contoso.com');
    assertSameBytes(rewritten, expected);
    assert.equal(rewritten.toString('latin1').match(/^Reply-To:/gim)?.length, 1);
  });

  it('leaves the long To line and the Bcc header of the copier byte for byte', async () => {
    const header = headerOf(await fixture('mfp-many-recipients-bcc-header.eml'));
    const rewritten = rewriteHeaderForSendAs(header, 'copier@contoso.com').toString('latin1');
    const original = header.toString('latin1');
    for (const line of original.split('\r\n').filter((l) => /^(To|Cc|Bcc|Subject|Message-ID):/.test(l))) {
      assert.ok(rewritten.includes(`\r\n${line}\r\n`), line.slice(0, 40));
    }
  });
});

describe('rewriteHeaderForSendAs', () => {
  it('reads a folded From, keeps its name and copies the folded original into Reply-To as it was', () => {
    const header = bytes('To: it@contoso.com\r\nFrom: "Accounts\r\n Payable"\r\n <ap@erp.contoso.local>\r\nSubject: Run\r\n\r\n');
    const expected = bytes(
      'To: it@contoso.com\r\n' +
        'From: Accounts Payable <relay@contoso.com>\r\n' +
        'Reply-To: "Accounts\r\n Payable"\r\n <ap@erp.contoso.local>\r\n' +
        'Subject: Run\r\n\r\n',
    );
    assertSameBytes(rewriteHeaderForSendAs(header, 'relay@contoso.com'), expected);
  });

  it('recognizes an address-like display name folded onto its own line', () => {
    const header = bytes('From: "scanner@printer.local"\r\n\t<scanner@printer.local>\r\nSubject: s\r\n\r\n');
    const expected = bytes('From: scanner@contoso.com\r\nReply-To: "scanner@printer.local"\r\n\t<scanner@printer.local>\r\nSubject: s\r\n\r\n');
    assertSameBytes(rewriteHeaderForSendAs(header, 'scanner@contoso.com'), expected);
  });

  it('drops a display name that holds an address among other words', () => {
    const header = bytes('From: "MFP (scanner@printer.local)" <scanner@printer.local>\r\n\r\n');
    assert.match(rewriteHeaderForSendAs(header, 'scanner@contoso.com').toString('latin1'), /^From: scanner@contoso\.com\r\n/);
  });

  it('quotes a kept display name that needs quoting, and keeps raw 8-bit name bytes', () => {
    assert.match(
      rewriteHeaderForSendAs(bytes('From: "Doe, John \\"JD\\"" <jd@printer.local>\r\n\r\n'), 'relay@contoso.com').toString('latin1'),
      /^From: "Doe, John \\"JD\\"" <relay@contoso\.com>\r\n/,
    );
    const eightBit = rewriteHeaderForSendAs(bytes('From: Gr\xc3\xbc\xc3\x9fe Fax <fax@printer.local>\r\n\r\n'), 'relay@contoso.com');
    assert.ok(eightBit.subarray(0, eightBit.indexOf('\r\n')).equals(bytes('From: Gr\xc3\xbc\xc3\x9fe Fax <relay@contoso.com>')));
  });

  it('keeps a UTF-8 display name whose last byte is 0xA0 (à) whole', () => {
    for (const from of ['From: Voil\xc3\xa0 <v@printer.local>\r\n\r\n', 'From: "Voil\xc3\xa0" <v@printer.local>\r\n\r\n', 'From: v@printer.local (Voil\xc3\xa0)\r\n\r\n']) {
      const rewritten = rewriteHeaderForSendAs(bytes(from), 'relay@contoso.com');
      assert.ok(rewritten.subarray(0, rewritten.indexOf('\r\n')).equals(bytes('From: Voil\xc3\xa0 <relay@contoso.com>')), from);
    }
  });

  it('takes the name from an old-style comment', () => {
    assert.match(rewriteHeaderForSendAs(bytes('From: ap@erp.local (Accounts Payable)\r\n\r\n'), 'relay@contoso.com').toString('latin1'), /^From: Accounts Payable <relay@contoso\.com>\r\n/);
  });

  it('matches the From field name in any case and with space before the colon', () => {
    const rewritten = rewriteHeaderForSendAs(bytes('FROM : Fax <fax@printer.local>\r\n\r\n'), 'relay@contoso.com');
    assertSameBytes(rewritten, bytes('From: Fax <relay@contoso.com>\r\nReply-To: Fax <fax@printer.local>\r\n\r\n'));
  });

  it('adds no Reply-To when the From already was the send-as address', () => {
    const rewritten = rewriteHeaderForSendAs(bytes('From: "scanner@contoso.com" <Scanner@Contoso.com>\r\n\r\n'), 'scanner@contoso.com');
    assertSameBytes(rewritten, bytes('From: scanner@contoso.com\r\n\r\n'));
  });

  it('adds no Reply-To when the From names no address', () => {
    assertSameBytes(rewriteHeaderForSendAs(bytes('From: MFP-2F\r\n\r\n'), 'relay@contoso.com'), bytes('From: MFP-2F <relay@contoso.com>\r\n\r\n'));
    assertSameBytes(rewriteHeaderForSendAs(bytes('From:\r\n\r\n'), 'relay@contoso.com'), bytes('From: relay@contoso.com\r\n\r\n'));
  });

  it('drops a Sender that names another address and keeps one naming the send-as address', () => {
    const header = bytes('Sender: scanner@printer.local\r\nFrom: a@printer.local\r\nSender: Relay <RELAY@contoso.com>\r\nSender: nobody\r\n\r\n');
    const expected = bytes('From: relay@contoso.com\r\nReply-To: a@printer.local\r\nSender: Relay <RELAY@contoso.com>\r\n\r\n');
    assertSameBytes(rewriteHeaderForSendAs(header, 'relay@contoso.com'), expected);
  });

  it('keeps one From when a device wrote two', () => {
    const header = bytes('From: first@printer.local\r\nSubject: s\r\nFrom: second@printer.local\r\n\r\n');
    assertSameBytes(rewriteHeaderForSendAs(header, 'relay@contoso.com'), bytes('From: relay@contoso.com\r\nReply-To: first@printer.local\r\nSubject: s\r\n\r\n'));
  });

  it('ends a message that has no body with a blank line', () => {
    assertSameBytes(rewriteHeaderForSendAs(bytes('Subject: x\r\n'), 'a@contoso.com'), bytes('Subject: x\r\nFrom: a@contoso.com\r\n\r\n'));
    assertSameBytes(rewriteHeaderForSendAs(bytes('Subject: x'), 'a@contoso.com'), bytes('Subject: x\r\nFrom: a@contoso.com\r\n\r\n'));
    assertSameBytes(rewriteHeaderForSendAs(Buffer.alloc(0), 'a@contoso.com'), bytes('From: a@contoso.com\r\n\r\n'));
  });

  it('gives an empty header a From', () => {
    assertSameBytes(rewriteHeaderForSendAs(bytes('\r\n'), 'a@contoso.com'), bytes('From: a@contoso.com\r\n\r\n'));
  });

  it('passes on bytes after the blank line unchanged', () => {
    const message = bytes('From: x@printer.local\r\n\r\nFrom: not a header\r\n\r\n\xff\x00');
    assertSameBytes(
      rewriteHeaderForSendAs(message, 'a@contoso.com'),
      bytes('From: a@contoso.com\r\nReply-To: x@printer.local\r\n\r\nFrom: not a header\r\n\r\n\xff\x00'),
    );
  });

  it('takes a first line that is not a field for the start of the body and gives it a header', () => {
    const message = bytes('From sender@printer.local Fri Nov 27 09:14:02 2026\r\n: no name\r\nSubject: s\r\n\r\n');
    assertSameBytes(rewriteHeaderForSendAs(message, 'a@contoso.com'), Buffer.concat([bytes('From: a@contoso.com\r\n\r\n'), message]));
  });

  it('gives the UPS text with no header section a header of its own, the text untouched', () => {
    const message = bytes('UPS on battery\r\nRuntime left: 12 min\r\n');
    assertSameBytes(rewriteHeaderForSendAs(message, 'ups@contoso.com'), bytes('From: ups@contoso.com\r\n\r\nUPS on battery\r\nRuntime left: 12 min\r\n'));
  });

  it('refuses a send-as value that is not a plain address', () => {
    for (const sendAs of ['', 'relay', 'Relay <relay@contoso.com>', 'relay@contoso.com\r\nBcc: x@y.z', 'a b@contoso.com', 'a@b@c']) {
      assert.throws(() => rewriteHeaderForSendAs(bytes('Subject: x\r\n\r\n'), sendAs), RangeError, JSON.stringify(sendAs));
    }
  });

  it('writes a non-ASCII send-as address as UTF-8', () => {
    const rewritten = rewriteHeaderForSendAs(bytes('\r\n'), 'empf\u00e4nger@contoso.com');
    assert.ok(rewritten.equals(Buffer.from('From: empf\u00e4nger@contoso.com\r\n\r\n', 'utf8')));
  });
});

type Role = 'from' | 'reply-to' | 'sender' | 'other';

function seededFloats(seed: number): () => number {
  const random = new SeededRandom(seed);
  return () => random.next();
}

function pick<T>(rand: () => number, items: readonly T[]): T {
  return items[Math.floor(rand() * items.length)] as T;
}

/** Field text bytes: printable ASCII and 8-bit bytes, never CR or LF, sometimes folded. */
function randomValue(rand: () => number): string {
  let value = '';
  const length = 1 + Math.floor(rand() * 40);
  for (let i = 0; i < length; i++) {
    const roll = rand();
    if (roll < 0.08) value += '\r\n' + pick(rand, [' ', '\t']);
    else if (roll < 0.2) value += String.fromCharCode(0x80 + Math.floor(rand() * 0x80));
    else value += String.fromCharCode(0x20 + Math.floor(rand() * 0x5f));
  }
  return value;
}

const OTHER_NAMES = ['Subject', 'To', 'Cc', 'Date', 'Message-ID', 'X-Printer', 'Received', 'MIME-Version', 'Content-Type', 'subject', 'X-From-Device'];
const ADDRESSES = ['scanner@printer.local', 'relay@contoso.com', 'Fax <fax@contoso.com>', '"copier@contoso.com" <copier@contoso.com>', 'a@b.example', '<>'];

function generateHeader(rand: () => number): { header: Buffer; fields: { role: Role; raw: Buffer }[] } {
  const fields: { role: Role; raw: Buffer }[] = [];
  const count = Math.floor(rand() * 9);
  for (let i = 0; i < count; i++) {
    const roll = rand();
    let role: Role;
    let text: string;
    if (roll < 0.2) {
      role = 'from';
      text = `${pick(rand, ['From', 'FROM', 'from'])}:${pick(rand, [' ', '', '\t'])}${rand() < 0.7 ? pick(rand, ADDRESSES) : randomValue(rand)}`;
    } else if (roll < 0.28) {
      role = 'reply-to';
      text = `Reply-To: ${pick(rand, ADDRESSES)}`;
    } else if (roll < 0.36) {
      role = 'sender';
      text = `Sender: ${pick(rand, ADDRESSES)}`;
    } else {
      role = 'other';
      text = `${pick(rand, OTHER_NAMES)}: ${randomValue(rand)}`;
    }
    fields.push({ role, raw: Buffer.from(`${text}\r\n`, 'latin1') });
  }
  return { header: Buffer.concat([...fields.map((f) => f.raw), Buffer.from('\r\n')]), fields };
}

/** The fields of a header block as latin1 text, each with its folded lines and final CRLF. */
function outputFields(header: Buffer): string[] {
  const text = header.toString('latin1');
  const body = text.endsWith('\r\n\r\n') ? text.slice(0, -2) : text;
  const fields: string[] = [];
  for (const line of body.split(/(?<=\r\n)/)) {
    if (line === '') continue;
    if (/^[ \t]/.test(line) && fields.length > 0) fields[fields.length - 1] += line;
    else fields.push(line);
  }
  return fields;
}

function roleOf(field: string): Role {
  const name = /^([^:\r\n]*):/.exec(field)?.[1]?.trim().toLowerCase();
  return name === 'from' ? 'from' : name === 'reply-to' ? 'reply-to' : name === 'sender' ? 'sender' : 'other';
}

describe('rewriteHeaderForSendAs on random header blocks', () => {
  const SEND_AS = 'relay@contoso.com';
  const RUNS = 600;
  const baseSeed = integerFromEnv('SENDAS_FUZZ_SEED', 0x5eed);

  it(`keeps its promises for ${RUNS} random headers (seed ${baseSeed})`, () => {
    for (let run = 0; run < RUNS; run++) {
      const seed = baseSeed + run;
      const { header, fields } = generateHeader(seededFloats(seed));
      const context = `seed ${seed}: ${JSON.stringify(header.toString('latin1'))}`;
      const output = rewriteHeaderForSendAs(header, SEND_AS);
      const out = outputFields(output);

      const froms = out.filter((field) => roleOf(field) === 'from');
      assert.equal(froms.length, 1, `exactly one From; ${context}`);
      const fromAddresses = addressparser((froms[0] as string).slice(5), { flatten: true }).map((m) => m.address);
      assert.deepEqual(fromAddresses, [SEND_AS], `From is the send-as address; ${context}`);

      const others = fields.filter((f) => f.role === 'other').map((f) => f.raw.toString('latin1'));
      assert.deepEqual(
        out.filter((field) => roleOf(field) === 'other'),
        others,
        `every other field unchanged and in order; ${context}`,
      );

      const replyTosIn = fields.filter((f) => f.role === 'reply-to').map((f) => f.raw.toString('latin1'));
      const replyTosOut = out.filter((field) => roleOf(field) === 'reply-to');
      if (replyTosIn.length > 0) {
        assert.deepEqual(replyTosOut, replyTosIn, `existing Reply-To kept as it was; ${context}`);
      } else {
        assert.ok(replyTosOut.length <= 1, `at most one Reply-To added; ${context}`);
      }

      for (const sender of out.filter((field) => roleOf(field) === 'sender')) {
        const named = addressparser(sender.replace(/^sender[ \t]*:/i, ''), { flatten: true }).map((m) => m.address.toLowerCase());
        assert.deepEqual([...new Set(named)], [SEND_AS], `a kept Sender names only the send-as address; ${context}`);
      }

      assert.ok(rewriteHeaderForSendAs(output, SEND_AS).equals(output), `a second rewrite changes nothing; ${context}`);
    }
  });
});
