import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { findHeaderSection } from '../../delivery/headerSection.ts';
import { rewriteHeaderForSendAs } from '../../delivery/sendAsRewrite.ts';
import { startTestAgent, type TestAgent } from '../../testbed/helpers/agentHarness.ts';
import type { RawSmtpClient } from '../../testbed/helpers/rawSmtpClient.ts';
import { BARE_CR_OR_LF } from '../intake/helpers/messageBytes.ts';
import { HELP_REPLY, openSession, queuedId, quit } from '../intake/helpers/smtpSession.ts';
import { FROM, TO } from './hostileClients.ts';
import { assertStillServes } from './runEntry.ts';
import { integerFromEnv, SeededRandom } from '../../testbed/helpers/seededRandom.ts';
import { readOutboxMessage } from '../../testbed/helpers/relayTrace.ts';

/**
 * A short, replayable fuzz run. Every run with the same SMARTHOST_FUZZ_SEED sends the same
 * bytes; set another seed (or more SMARTHOST_FUZZ_ITERATIONS) to explore further.
 */
const SEED = integerFromEnv('SMARTHOST_FUZZ_SEED', 20_251_127);
const ITERATIONS = integerFromEnv('SMARTHOST_FUZZ_ITERATIONS', 60);
/** Header rewriting is a pure function: it gets many more cases in the same time. */
const HEADER_CASES = ITERATIONS * 50;

const MARKER = 'HELP\r\n';
const BARE_NEWLINE_REFUSED = '550 5.6.0 Message contains a bare CR or LF; line ends must be CRLF';
/** A reply line: code, separator, text without control characters (which could split it). */
const WELL_FORMED_REPLY = /^[2-5]\d\d[ -][^\x00-\x1f\x7f]*$/;

const CR = 0x0d;
const LF = 0x0a;

// ---------------------------------------------------------------------------------------------
// SMTP command handling

/** Verbs a command line may start with; never DATA (a body would follow), QUIT or HELP (the marker). */
const VERBS = ['HELO', 'EHLO', 'MAIL FROM:', 'RCPT TO:', 'RSET', 'NOOP', 'VRFY', 'EXPN', 'AUTH', 'STARTTLS', 'BDAT', 'XCLIENT', 'LHLO', 'mail from:', 'Rcpt To:'];
const RESERVED = new Set(['DATA', 'QUIT', 'HELP']);
const ADDRESS_CHARS = 'abcxyz0189.-_+@<>[]:;," \\()!#%&\'*/=?^`{|}~\t\x00\x7f\xe9\xc3\xbc';

function randomAddress(random: SeededRandom): string {
  const local = random.text(random.int(0, 12), ADDRESS_CHARS);
  const domain = random.pick(['contoso.com', 'fabrikam.com', 'CONTOSO.COM', '[127.0.0.1]', 'contoso..com', '', random.text(random.int(1, 10), ADDRESS_CHARS)]);
  const inner = random.chance(0.8) ? `${local}@${domain}` : local;
  return random.pick([`<${inner}>`, inner, `<${inner}`, `${inner}>`, '<>', `<@contoso.com:${inner}>`]);
}

function randomParameter(random: SeededRandom): string {
  return random.pick([
    `SIZE=${random.int(0, 1e9)}`,
    `SIZE=${random.text(random.int(0, 25), '0123456789x')}`,
    'BODY=8BITMIME',
    `BODY=${random.text(4, 'ABCXYZ')}`,
    'SMTPUTF8',
    `ENVID=${random.text(random.int(0, 20), 'ab+0D0A=')}`,
    `NOTIFY=${random.pick(['NEVER', 'SUCCESS,FAILURE', 'BOGUS', ''])}`,
    'RET=HDRS',
    random.text(random.int(1, 10), 'ABC=+x'),
  ]);
}

/** One command line, without its line end; never starts with a reserved verb. */
function randomCommand(random: SeededRandom): Buffer {
  for (;;) {
    let line: Buffer;
    const kind = random.int(0, 9);
    if (kind <= 5) {
      const verb = random.pick(VERBS);
      const args = verb.endsWith(':') ? [randomAddress(random)] : [random.text(random.int(0, 30), ADDRESS_CHARS)];
      for (let i = random.int(0, 2); i > 0; i--) {
        args.push(randomParameter(random));
      }
      line = Buffer.from(`${verb}${verb.endsWith(':') ? '' : ' '}${args.join(' ')}`, 'latin1');
    } else if (kind <= 8) {
      line = random.bytes(random.int(0, 200), [LF]);
    } else {
      // Around smtp-server's 16 KiB line limit: just under is a command, just over closes.
      line = Buffer.from(`NOOP ${'x'.repeat(16 * 1024 - 5 + random.int(-2, 2))}`, 'latin1');
    }
    const verb = line.toString('latin1').split(' ')[0]?.toUpperCase() ?? '';
    if (!RESERVED.has(verb)) {
      return line;
    }
  }
}

/** Replies until the marker's, at most `max`; `closed` when the server hung up first. */
async function repliesUntilMarker(client: RawSmtpClient, max: number): Promise<{ replies: string[]; closed: boolean }> {
  const replies: string[] = [];
  while (replies.length < max) {
    let reply: string | undefined;
    try {
      [reply] = await client.read(1);
    } catch {
      return { replies, closed: true };
    }
    replies.push(reply ?? '');
    if (reply === HELP_REPLY) {
      break;
    }
  }
  return { replies, closed: false };
}

// ---------------------------------------------------------------------------------------------
// DATA with malformed ends of data

/** A sequence that looks like an end of data to a lax reader, built from CR, LF, dots and friends. */
function fakeEnd(random: SeededRandom): string {
  const parts = ['\r', '\n', '.', '.', '\0', ' ', '\t', '\r\n', '..'];
  let out = '';
  for (let i = random.int(2, 6); i > 0; i--) {
    out += random.pick(parts);
  }
  return out.includes('.') ? out : `${out}.`;
}

function randomBodyText(random: SeededRandom): string {
  return random.bytes(random.int(0, 40), [CR, LF]).toString('latin1');
}

const SMUGGLED = [
  'MAIL FROM:<evil@contoso.com>\r\nRCPT TO:<victim@contoso.com>\r\nDATA\r\n',
  'MAIL FROM:<evil@contoso.com>\nRCPT TO:<victim@contoso.com>\nDATA\n',
  'RSET\r\n',
  'QUIT\r\n',
];

/** A body (without the real end of data) in which CRLF.CRLF appears nowhere. */
function hostileBody(random: SeededRandom, tag: string): string {
  for (;;) {
    let body = `X-Fuzz: ${tag}\r\n\r\n`;
    for (let i = random.int(1, 6); i > 0; i--) {
      body += random.pick([randomBodyText, fakeEnd, fakeEnd, (r: SeededRandom) => r.pick(SMUGGLED)])(random);
    }
    body += `end of ${tag}${random.pick(['', '\r', '\n', ' ', '.'])}`;
    if (!`${body}\r\n.\r\n`.slice(0, -3).includes('\r\n.\r\n')) {
      return body;
    }
  }
}

/** smtp-server removes the first of two dots after any LF (CRLF or bare). */
const unstuffed = (text: string) => text.replace(/\n\.(?=\.)/g, '\n');
const normalized = (text: string) => text.replace(/\r\n|\r|\n/g, '\r\n');

/** The body's bytes in up to three writes, so the end of data may straddle segments. */
async function writeInPieces(client: RawSmtpClient, random: SeededRandom, bytes: Buffer): Promise<void> {
  const cuts = [random.int(0, bytes.length), random.int(0, bytes.length)].sort((a, b) => a - b);
  for (const [start, end] of [[0, cuts[0]], [cuts[0], cuts[1]], [cuts[1], bytes.length]] as [number, number][]) {
    if (end > start) {
      client.write(bytes.subarray(start, end));
      await new Promise((resolve) => setImmediate(resolve));
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Header rewriting

const NAME_CHARS = 'AaZz09 .,;:"\\()<>@[]\t!#$%&\'*+-/=?^_`{|}~\xa0\xc3\xa9\xe2\x80\x99\x00\x01\x7f';

function randomMailboxValue(random: SeededRandom): string {
  const address = `${random.text(random.int(1, 10), 'abcxyz019.-_+')}@${random.pick(['printer.local', 'contoso.com', 'fabrikam.com'])}`;
  const name = random.text(random.int(0, 20), NAME_CHARS);
  const value = random.pick([
    address,
    `<${address}>`,
    `${name} <${address}>`,
    `"${name.replace(/["\\]/g, '')}" <${address}>`,
    `${address} (${name.replace(/[()]/g, '')})`,
    `scanner@printer.local <${address}>`,
    `${address}, other@contoso.com`,
    'undisclosed-recipients:;',
    `=?utf-8?q?${random.text(random.int(1, 10), 'abc=C3=A9_')}?= <${address}>`,
    '',
    name,
  ]);
  // Fold at a random space now and then: CRLF followed by white space stays inside the field.
  const space = value.indexOf(' ', random.int(0, value.length));
  return space > 0 && random.chance(0.3) ? `${value.slice(0, space)}\r\n${random.pick([' ', '\t'])}${value.slice(space + 1)}` : value;
}

function randomHeaderLine(random: SeededRandom): string {
  const text = () => random.bytes(random.int(0, 60), [CR, LF]).toString('latin1');
  return random.pick<() => string>([
    () => `From: ${randomMailboxValue(random)}`,
    () => `${random.pick(['FROM', 'from', 'From ', 'From\t'])}:${randomMailboxValue(random)}`,
    () => `Sender: ${randomMailboxValue(random)}`,
    () => `Reply-To: ${randomMailboxValue(random)}`,
    () => `To: ${randomMailboxValue(random)}`,
    () => `Subject: ${text()}`,
    () => `X-${random.text(random.int(1, 8), 'abcXYZ-09')}: ${text()}`,
    () => `${random.pick([' ', '\t'])}${text()}`,
    () => `From scanner@printer.local ${text()}`,
    () => text(),
  ])();
}

/** A message as the spool holds it (CRLF line ends only), with or without a blank line and body. */
function randomMessage(random: SeededRandom): Buffer {
  const header = Array.from({ length: random.int(0, 8) }, () => randomHeaderLine(random)).join('\r\n');
  const body = Array.from({ length: random.int(0, 4) }, () =>
    random.pick([() => random.bytes(random.int(0, 50), [CR, LF]).toString('latin1'), () => 'From: body@contoso.com', () => ''])(),
  ).join('\r\n');
  const text = random.pick([
    () => `${header}\r\n\r\n${body}`,
    () => `${header}\r\n\r\n`,
    () => `${header}\r\n`,
    () => header,
    () => `\r\n${body}`,
  ])();
  return Buffer.from(text, 'latin1');
}

const SEND_AS_LOCAL = 'abcdefxyz0123456789._+-';

/** A plain address; now and then with a non-ASCII letter, which the function accepts (config does not). */
function validSendAs(random: SeededRandom): string {
  const local = random.text(random.int(1, 16), SEND_AS_LOCAL) + (random.chance(0.1) ? 'ü' : '');
  const domain = Array.from({ length: random.int(1, 3) }, () => random.text(random.int(1, 10), 'abcxyz019-')).join('.');
  return `${local}@${domain}`;
}

/** Not a plain address: a character that may not appear in one, inside it, or the wrong number of @. */
function invalidSendAs(random: SeededRandom): string {
  const valid = `${random.text(random.int(2, 10), 'abcxyz019')}@${random.text(random.int(2, 10), 'abcxyz019')}.com`;
  const at = random.int(1, valid.length - 1);
  return random.pick([
    () => `${valid.slice(0, at)}${random.pick([' ', '<', '>', '(', ')', '[', ']', '\\', ',', ';', ':', '"', '@', '\0', '\r\n', '\t', '\x7f'])}${valid.slice(at)}`,
    () => valid.replace('@', ''),
    () => random.pick(['', ' ', '@', 'scanner@', '@contoso.com', `<${valid}>`, `${valid}\r\nBcc: spy@fabrikam.com`]),
  ])();
}

const FROM_FIELD = /^from[ \t]*:/i;

// ---------------------------------------------------------------------------------------------

describe(`fuzz, seed ${SEED} (replay: SMARTHOST_FUZZ_SEED=${SEED} SMARTHOST_FUZZ_ITERATIONS=${ITERATIONS})`, () => {
  let agent: TestAgent;
  let rejecting: TestAgent;

  before(async () => {
    const base = { clients: [{ name: 'office', address: '127.0.0.1' }], senders: { allowedDomains: ['contoso.com'] } };
    [agent, rejecting] = await Promise.all([startTestAgent(base), startTestAgent({ ...base, listen: { bareNewlines: 'reject' } })]);
  });

  after(async () => {
    await Promise.all([agent?.dispose(), rejecting?.dispose()]);
  });

  test('random command lines: one well-formed reply per line, or a 421 and the connection closed', async (t) => {
    const random = new SeededRandom(SEED);
    let client = await openSession(agent.address.port);
    let lines = 0;
    let closes = 0;
    try {
      for (let i = 0; i < ITERATIONS; i++) {
        const batch = Array.from({ length: random.int(1, 4) }, () => Buffer.concat([randomCommand(random), Buffer.from(random.chance(0.85) ? '\r\n' : '\n')]));
        lines += batch.length;
        client.write(Buffer.concat([...batch, Buffer.from(MARKER)]));
        const { replies, closed } = await repliesUntilMarker(client, batch.length + 1);
        const context = `iteration ${i}: ${JSON.stringify(Buffer.concat(batch).toString('latin1').slice(0, 400))} -> ${JSON.stringify(replies)}`;
        for (const reply of replies) {
          assert.match(reply, WELL_FORMED_REPLY, context);
        }
        if (closed) {
          assert.ok(replies.length <= batch.length && /^421 /.test(replies.at(-1) ?? ''), `closed without a 421: ${context}`);
          closes += 1;
          client = await openSession(agent.address.port);
          continue;
        }
        assert.equal(replies.length, batch.length + 1, `one reply per line: ${context}`);
        assert.equal(replies.at(-1), HELP_REPLY, context);
        assert.ok(!replies.slice(0, -1).some((reply) => /^(354|235) /.test(reply)), `no DATA or AUTH was started: ${context}`);
      }
    } finally {
      client.close();
    }
    t.diagnostic(`${lines} command lines, ${closes} connections closed by the server with 421`);
    await assertStillServes(agent, 'the command fuzz');
  });

  for (const [policy, pick] of [
    ['normalize', () => agent],
    ['reject', () => rejecting],
  ] as const) {
    test(`DATA with fake ends of data (bareNewlines ${policy}): exactly one reply, only after CRLF.CRLF, and the whole body kept`, async (t) => {
      const target = pick();
      const random = new SeededRandom(SEED ^ (policy === 'normalize' ? 0x1111 : 0x2222));
      const client = await openSession(target.address.port);
      let refused = 0;
      try {
        for (let i = 0; i < ITERATIONS; i++) {
          const body = hostileBody(random, `${SEED}-${i}`);
          client.write(`MAIL FROM:<${FROM}>\r\nRCPT TO:<${TO}>\r\nDATA\r\n`);
          assert.deepEqual(await client.read(3), ['250 Accepted', '250 Accepted', '354 End data with <CR><LF>.<CR><LF>']);
          await writeInPieces(client, random, Buffer.from(`${body}\r\n.\r\n${MARKER}`, 'latin1'));
          const { replies, closed } = await repliesUntilMarker(client, 3);
          const context = `iteration ${i}: body ${JSON.stringify(body)} -> ${JSON.stringify(replies)}`;
          assert.ok(!closed, `connection closed: ${context}`);
          assert.equal(replies.length, 2, `one reply for the message, then the marker's: ${context}`);
          const kept = unstuffed(`${body}\r\n`);
          if (policy === 'reject' && BARE_CR_OR_LF.test(kept)) {
            assert.equal(replies[0], BARE_NEWLINE_REFUSED, context);
            refused += 1;
            continue;
          }
          const id = queuedId(replies[0] ?? '');
          await target.deliveryLoop.whenIdle();
          const stored = (await readOutboxMessage(target.config.outbox.dir, id)).toString('latin1');
          // listen.nulBytes strip (the default) removes NULs after the line ends are handled.
          const expected = (policy === 'normalize' ? normalized(kept) : kept).replace(/\0/g, '');
          assert.equal(stored, expected, `stored bytes: ${context}`);
        }
      } finally {
        await quit(client);
      }
      t.diagnostic(`${ITERATIONS} messages, ${refused} refused for bare line ends`);
      await assertStillServes(target, 'the DATA fuzz');
    });
  }

  test('no error was logged by either agent', () => {
    for (const running of [agent, rejecting]) {
      assert.deepEqual(
        running.logs.records().filter((record) => (record.level as number) >= 50),
        [],
      );
    }
  });

  test('send-as header rewriting: never throws for a plain address, always exactly one From, CRLF only, body untouched', (t) => {
    const random = new SeededRandom(SEED ^ 0x3333);
    let withBody = 0;
    for (let i = 0; i < HEADER_CASES; i++) {
      const message = randomMessage(random);
      const sendAs = validSendAs(random);
      const context = `case ${i}: sendAs ${JSON.stringify(sendAs)}, message ${JSON.stringify(message.toString('latin1'))}`;
      const out = rewriteHeaderForSendAs(message, sendAs);
      const text = out.toString('latin1');
      assert.ok(!BARE_CR_OR_LF.test(text), `bare CR or LF in ${JSON.stringify(text)}: ${context}`);
      const end = findHeaderSection(out).bodyStart;
      assert.ok(end > 0 && text.slice(0, end).endsWith('\r\n\r\n'), `header ends with CRLF CRLF: ${JSON.stringify(text)}: ${context}`);
      const fromFields = text.slice(0, end).split('\r\n').filter((line) => FROM_FIELD.test(line));
      assert.equal(fromFields.length, 1, `From fields ${JSON.stringify(fromFields)}: ${context}`);
      const utf8From = Buffer.from(fromFields[0] ?? '', 'latin1').toString('utf8');
      assert.ok(utf8From === `From: ${sendAs}` || utf8From.endsWith(` <${sendAs}>`), `From names sendAs: ${JSON.stringify(utf8From)}: ${context}`);
      const { bodyStart } = findHeaderSection(message);
      if (bodyStart === message.length) {
        assert.equal(end, out.length, `a message without a body ends with its new blank line: ${context}`);
      } else {
        withBody += 1;
        assert.ok(out.subarray(end).equals(message.subarray(bodyStart)), `body unchanged: ${context}`);
      }
      // Only for ASCII: with a non-ASCII sendAs the From it wrote is compared as latin1 against
      // the UTF-8 address, so a second pass adds a Reply-To naming sendAs itself. The config's
      // z.email() only lets ASCII addresses through, so this cannot happen in the product today.
      if (/^[\x21-\x7e]+$/.test(sendAs)) {
        assert.ok(rewriteHeaderForSendAs(out, sendAs).equals(out), `rewriting twice changes nothing: ${JSON.stringify(text)}: ${context}`);
      }
    }
    for (let i = 0; i < HEADER_CASES / 5; i++) {
      const sendAs = invalidSendAs(random);
      assert.throws(() => rewriteHeaderForSendAs(randomMessage(random), sendAs), RangeError, `sendAs ${JSON.stringify(sendAs)}`);
    }
    t.diagnostic(`${HEADER_CASES} messages (${withBody} with a body), ${HEADER_CASES / 5} invalid send-as addresses`);
  });
});
