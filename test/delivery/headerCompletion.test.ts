import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { describe, it } from 'node:test';
import { simpleParser, type AddressObject, type ParsedMail } from 'mailparser';
import type { MessageEnvelope } from '../../contract/messageEnvelope.ts';
import { deliverMessage } from '../../delivery/deliverMessage.ts';
import type { DeliveryLogger } from '../../delivery/logger.ts';
import { settleAttempt } from '../../delivery/settle/settleAttempt.ts';
import type { Submitter } from '../../delivery/smtp/submission.ts';
import { bareLfToCrlf } from '../intake/helpers/messageBytes.ts';

const FIXTURES = new URL('../fixtures/devices/', import.meta.url);
const fixtureNames = (await readdir(FIXTURES)).filter((name) => name.endsWith('.eml')).sort();
const SILENT: DeliveryLogger = { debug() {}, info() {}, warn() {}, error() {} };
const SEND_AS = 'devices@contoso.com';
const SENDER = 'ups@site.example';

function envelopeFor(body: Buffer, sendAs?: string): MessageEnvelope {
  return {
    id: 'hdrtest0001',
    receivedAt: '2026-12-03T19:53:50.000Z',
    client: { name: 'device', ip: '192.0.2.10' },
    helo: 'device.site.example',
    mailFrom: SENDER,
    rcptTo: ['desk@contoso.com'],
    size: body.length,
    sha256: '0'.repeat(64),
    ...(sendAs ? { sendAs } : {}),
  };
}

/** Delivers `body` through the delivery core and returns the bytes the upstream got, and the outcome. */
async function deliver(body: Buffer, sendAs?: string) {
  let raw: Buffer | undefined;
  const submitter: Submitter = {
    async submit(message) {
      const chunks: Buffer[] = [];
      for await (const chunk of message.raw) chunks.push(chunk as Buffer);
      raw = Buffer.concat(chunks);
      return { accepted: message.to, rejected: [] };
    },
    close: async () => undefined,
  };
  // Small chunks, as a spool file or an S3 stream may give them.
  const chunks = Array.from({ length: Math.ceil(body.length / 7) }, (_, i) => body.subarray(i * 7, i * 7 + 7));
  const envelope = envelopeFor(body, sendAs);
  const outcome = await deliverMessage({ envelope, rcptTo: envelope.rcptTo, openBody: () => Readable.from(chunks) }, submitter, SILENT);
  return { raw, outcome, envelope };
}

function fromAddresses(mail: ParsedMail): string[] {
  return (mail.from as AddressObject | undefined)?.value.map((mailbox) => mailbox.address ?? '') ?? [];
}

function headerNames(raw: Buffer): string[] {
  const head = raw.toString('latin1').split('\r\n\r\n', 1)[0] ?? '';
  return head.split(/\r\n(?![ \t])/).map((field) => (/^([^:]+):/.exec(field)?.[1] ?? '').toLowerCase());
}

describe('header section completion, read back with a MIME parser (mailparser)', () => {
  it('gives the UPS text with no header section a header, and keeps every line of it as body', async () => {
    const text = Buffer.from('UPS on battery\r\nRuntime left: 12 min\r\n', 'latin1');
    for (const sendAs of [undefined, SEND_AS]) {
      const { raw } = await deliver(text, sendAs);
      assert.ok(raw, 'delivered');
      const mail = await simpleParser(raw);
      assert.deepEqual(fromAddresses(mail), [sendAs ?? SENDER], `From (sendAs ${sendAs})`);
      assert.equal(mail.text, 'UPS on battery\nRuntime left: 12 min\n', 'both lines are body text');
      assert.equal(mail.headers.has('runtime left'), false, 'a body line is not taken for a field');
      assert.equal(mail.date?.toISOString(), '2026-12-03T19:53:50.000Z', 'Date is when the relay accepted it');
      assert.equal(mail.messageId, `<hdrtest0001@${(sendAs ?? SENDER).split('@')[1]}>`);
      assert.ok(raw.subarray(raw.length - text.length).equals(text), 'the device bytes are the end of the message, unchanged');
    }
  });

  for (const name of fixtureNames) {
    for (const sendAs of [undefined, SEND_AS]) {
      it(`${name} ${sendAs ? 'with' : 'without'} send-as: one From, one Date, one Message-ID, and the same body`, async () => {
        const original = bareLfToCrlf(await readFile(new URL(name, FIXTURES)));
        const before = await simpleParser(original);
        const { raw, outcome } = await deliver(original, sendAs);
        assert.deepEqual(outcome.accepted, ['desk@contoso.com']);
        assert.ok(raw, 'delivered');
        const after = await simpleParser(raw);
        const names = headerNames(raw);
        for (const field of ['from', 'date', 'message-id']) {
          assert.equal(names.filter((n) => n === field).length, 1, `exactly one ${field} in ${JSON.stringify(names)}`);
        }
        const expectedFrom = sendAs ?? (fromAddresses(before)[0] || SENDER);
        assert.deepEqual(fromAddresses(after), [expectedFrom]);
        if (before.date) assert.equal(after.date?.getTime(), before.date.getTime(), 'the device Date is kept');
        if (before.messageId) assert.equal(after.messageId, before.messageId, 'the device Message-ID is kept');
        assert.equal(after.subject, before.subject);
        assert.equal(after.text, before.text);
        assert.equal(after.html, before.html);
        assert.deepEqual(
          after.attachments.map((a) => a.checksum),
          before.attachments.map((a) => a.checksum),
        );
      });
    }
  }

  it('fails a send-as message whose header has no end within 1 MiB for good, not as transient', async () => {
    const endless = Buffer.concat([Buffer.from('Subject: x\r\n'), ...Array.from({ length: 20_000 }, (_, i) => Buffer.from(`X-Line-${i}: ${'v'.repeat(60)}\r\n`))]);
    const { raw, outcome, envelope } = await deliver(endless, SEND_AS);
    assert.equal(outcome.accepted.length, 0);
    assert.equal(outcome.deferred.length, 0, 'nothing left to retry');
    assert.equal(outcome.rejected[0]?.classification.kind, 'permanent');
    assert.match(outcome.failure?.classification.reason ?? '', /has no end within 1048576 bytes: the From field cannot be rewritten for send-as/);
    assert.equal(raw, undefined, 'nothing reached the upstream complete');
    const { decision } = settleAttempt({
      messageId: envelope.id,
      progress: { attempts: 0, delivered: [], refused: [], receivedAt: envelope.receivedAt },
      outcome,
      policy: { scheduleMs: [60_000], maxAgeMs: 172_800_000 },
      now: new Date(envelope.receivedAt),
      attempt: { route: 'test', startedAt: new Date(envelope.receivedAt) },
    });
    assert.equal(decision.action, 'give-up');
  });
});
