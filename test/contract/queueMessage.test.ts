import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';
import { MAX_NOTICE_TO, type MessageEnvelope } from '../../contract/messageEnvelope.ts';
import {
  DEFAULT_INLINE_MAX_BYTES,
  MAX_INLINE_MAX_BYTES,
  QueueMessageError,
  SQS_DEFAULT_MAX_MESSAGE_BYTES,
  SQS_MAX_MESSAGE_BYTES,
  decodeInlineBody,
  encodeInlineBody,
  inlineQueueMessage,
  parseQueueMessage,
  planQueueMessage,
  queueMessageByteLength,
  resolveQueueMessageLimits,
  s3KeyFor,
  s3QueueMessage,
  serializeQueueMessage,
  verifyBody,
  type QueueMessage,
} from '../../contract/queueMessage.ts';

const fixture = (name: string): string => readFileSync(new URL(`../../contract/fixtures/${name}`, import.meta.url), 'utf8');
const sha256 = (body: Buffer): string => createHash('sha256').update(body).digest('hex');

function envelopeFor(body: Buffer, overrides: Partial<MessageEnvelope> = {}): MessageEnvelope {
  return {
    id: 'T3stMessage0001',
    receivedAt: '2026-11-27T10:20:30.000Z',
    client: { name: 'scanner', ip: '192.0.2.10' },
    helo: 'scanner.contoso.com',
    mailFrom: 'scanner@contoso.com',
    rcptTo: ['you@contoso.com'],
    size: body.length,
    sha256: sha256(body),
    ...overrides,
  };
}

/** Text that gzip shrinks a lot, like a report or a plain-text mail. */
function compressibleBody(bytes: number): Buffer {
  const line = 'Share 07: backup completed, 0 errors, 0 warnings.\r\n';
  return Buffer.from(line.repeat(Math.ceil(bytes / line.length)).slice(0, bytes), 'utf8');
}

function expectQueueMessageError(text: string, reason: QueueMessageError['reason'], pattern: RegExp): QueueMessageError {
  let caught: unknown;
  try {
    parseQueueMessage(text);
  } catch (error) {
    caught = error;
  }
  assert.ok(caught instanceof QueueMessageError, `expected a QueueMessageError, got ${String(caught)}`);
  assert.equal(caught.reason, reason);
  assert.match(caught.message, pattern);
  return caught;
}

describe('queue message fixtures', () => {
  for (const name of ['v1-inline-base64.json', 'v1-inline-gzip.json']) {
    it(`${name} parses and its body matches the envelope's size and SHA-256`, () => {
      const message = parseQueueMessage(fixture(name));
      assert.equal(message.schemaVersion, 1);
      assert.equal(message.body.kind, 'inline');
      if (message.body.kind !== 'inline') return;
      const body = decodeInlineBody(message.body, message.envelope.size);
      verifyBody(message.envelope, body);
      // The fixture's encoding is the one the encoder picks for that body today.
      assert.equal(encodeInlineBody(body).encoding, message.body.encoding);
    });
  }

  it('v1-inline-base64.json keeps its multibyte client name', () => {
    assert.equal(parseQueueMessage(fixture('v1-inline-base64.json')).envelope.client.name, 'Büro-Scanner 2.OG');
  });

  it('v1-s3.json parses as a pointer under the incoming prefix, dated by the receive day', () => {
    const message = parseQueueMessage(fixture('v1-s3.json'));
    assert.equal(message.body.kind, 's3');
    if (message.body.kind !== 's3') return;
    assert.equal(message.body.key, s3KeyFor(message.envelope));
    assert.equal(message.body.key, 'incoming/2026/11/27/Xf3pL0sQ7vNa2Wm8Jc4E.eml');
    assert.equal(message.body.size, message.envelope.size);
    assert.equal(message.envelope.mailFrom, '');
  });

  it('v99-unsupported.json is refused naming the version', () => {
    const error = expectQueueMessageError(fixture('v99-unsupported.json'), 'unsupported-schema-version', /^unsupported schemaVersion 99 \(this consumer reads 1\)$/);
    assert.equal(error.details.schemaVersion, 99);
  });

  it('v1-missing-rcpt.json is refused naming envelope.rcptTo', () => {
    const error = expectQueueMessageError(fixture('v1-missing-rcpt.json'), 'invalid-field', /^invalid field envelope\.rcptTo: /);
    assert.equal(error.path, 'envelope.rcptTo');
  });

  it('fixtures survive serialize → parse unchanged', () => {
    for (const name of ['v1-inline-base64.json', 'v1-inline-gzip.json', 'v1-s3.json']) {
      const message = parseQueueMessage(fixture(name));
      assert.deepEqual(parseQueueMessage(serializeQueueMessage(message)), message);
    }
  });
});

describe('parseQueueMessage', () => {
  it('refuses text that is not JSON', () => {
    expectQueueMessageError('From: someone\r\n', 'not-json', /^queue message is not JSON: /);
  });

  it('refuses JSON that is not an object', () => {
    const error = expectQueueMessageError('[1]', 'invalid-field', /not a JSON object/);
    assert.equal(error.path, '');
  });

  it('refuses a message without schemaVersion as a missing field, not as a version', () => {
    expectQueueMessageError('{"envelope":{}}', 'invalid-field', /^invalid field schemaVersion: required$/);
  });

  it('refuses a version given as a string', () => {
    expectQueueMessageError('{"schemaVersion":"1"}', 'unsupported-schema-version', /^unsupported schemaVersion "1"/);
  });

  it('names the nested path of a bad field', () => {
    const body = Buffer.from('x');
    const message = inlineQueueMessage(envelopeFor(body), body) as unknown as { envelope: { rcptTo: unknown[] } };
    message.envelope.rcptTo = ['you@contoso.com', 42];
    const error = expectQueueMessageError(JSON.stringify(message), 'invalid-field', /^invalid field envelope\.rcptTo\[1\]: /);
    assert.equal(error.path, 'envelope.rcptTo[1]');
  });

  it('refuses an unknown body kind and an unknown encoding', () => {
    const body = Buffer.from('x');
    const message = inlineQueueMessage(envelopeFor(body), body);
    expectQueueMessageError(JSON.stringify({ ...message, body: { kind: 'url', url: 'https://example.com' } }), 'invalid-field', /^invalid field body\.kind: /);
    expectQueueMessageError(JSON.stringify({ ...message, body: { kind: 'inline', encoding: 'zstd+base64', data: '' } }), 'invalid-field', /^invalid field body\.encoding: /);
  });

  it('refuses inline data that is not base64', () => {
    const body = Buffer.from('x');
    const message = inlineQueueMessage(envelopeFor(body), body);
    expectQueueMessageError(JSON.stringify({ ...message, body: { kind: 'inline', encoding: 'base64', data: 'not base64!' } }), 'invalid-field', /^invalid field body\.data: /);
  });

  it('refuses an S3 pointer whose size or digest differs from the envelope', () => {
    const envelope = envelopeFor(Buffer.from('body'));
    const message = s3QueueMessage(envelope, { bucket: 'smarthost-bodies', key: s3KeyFor(envelope) });
    if (message.body.kind !== 's3') throw new Error('expected an S3 body');
    expectQueueMessageError(JSON.stringify({ ...message, body: { ...message.body, size: 5 } }), 'invalid-field', /^invalid field body\.size: 5 differs from envelope\.size 4$/);
    expectQueueMessageError(JSON.stringify({ ...message, body: { ...message.body, sha256: '0'.repeat(64) } }), 'invalid-field', /^invalid field body\.sha256: /);
  });

  it('refuses fields a version 1 message does not have', () => {
    const body = Buffer.from('x');
    const message = inlineQueueMessage(envelopeFor(body), body);
    expectQueueMessageError(JSON.stringify({ ...message, priority: 'high' }), 'invalid-field', /^invalid field \(message\): /);
  });
});

describe('inline bodies', () => {
  const bodies: readonly [string, Buffer][] = [
    ['empty', Buffer.alloc(0)],
    ['random 1 byte', randomBytes(1)],
    ['random 64 KiB', randomBytes(64 * 1024)],
    ['compressible 150 KiB', compressibleBody(150 * 1024)],
    ['bare LF and NUL bytes', Buffer.from('a\nb\0c\r\n', 'latin1')],
  ];
  for (const [label, body] of bodies) {
    it(`round-trips ${label} through serialize and parse`, () => {
      const envelope = envelopeFor(body);
      const parsed = parseQueueMessage(serializeQueueMessage(inlineQueueMessage(envelope, body)));
      if (parsed.body.kind !== 'inline') throw new Error('expected an inline body');
      const decoded = decodeInlineBody(parsed.body, envelope.size);
      assert.ok(decoded.equals(body));
      verifyBody(parsed.envelope, decoded);
    });
  }

  it('uses gzip for a compressible body, and the result is smaller than plain base64', () => {
    const body = compressibleBody(100 * 1024);
    const encoded = encodeInlineBody(body);
    assert.equal(encoded.encoding, 'gzip+base64');
    assert.ok(encoded.data.length < body.toString('base64').length / 10);
  });

  it('keeps plain base64 for random bytes, where gzip would only add its header', () => {
    const body = randomBytes(32 * 1024);
    assert.ok(gzipSync(body).length > body.length);
    assert.deepEqual(encodeInlineBody(body), { encoding: 'base64', data: body.toString('base64') });
  });

  it('keeps plain base64 for a short text where gzip does not pay for its longer label', () => {
    const body = Buffer.from('Subject: Scan\r\n\r\nScan ready.\r\n');
    assert.equal(encodeInlineBody(body).encoding, 'base64');
  });

  it('refuses to inflate a gzip body beyond the allowed size', () => {
    const bomb = { encoding: 'gzip+base64' as const, data: gzipSync(Buffer.alloc(4 * 1024 * 1024)).toString('base64') };
    assert.throws(() => decodeInlineBody(bomb, 1024 * 1024), (error: unknown) => error instanceof QueueMessageError && error.reason === 'invalid-body' && /beyond 1048576 bytes/.test(error.message));
  });

  it('refuses corrupt gzip data', () => {
    const corrupt = { encoding: 'gzip+base64' as const, data: Buffer.from('not gzip at all').toString('base64') };
    assert.throws(() => decodeInlineBody(corrupt), (error: unknown) => error instanceof QueueMessageError && error.reason === 'invalid-body');
  });

  it('verifyBody names a size or digest mismatch', () => {
    const body = Buffer.from('hello\r\n');
    const envelope = envelopeFor(body);
    assert.throws(() => verifyBody(envelope, Buffer.from('hello\n')), /has 6 bytes, the envelope says 7/);
    assert.throws(() => verifyBody(envelope, Buffer.from('HELLO\r\n')), (error: unknown) => error instanceof QueueMessageError && error.reason === 'body-mismatch' && /SHA-256/.test(error.message));
  });
});

describe('planQueueMessage', () => {
  /** Bytes of the real inline message for a random (incompressible) body of `size` bytes. */
  function realInlineBytes(size: number, overrides: Partial<MessageEnvelope> = {}): number {
    const body = randomBytes(size);
    const message = inlineQueueMessage(envelopeFor(body, overrides), body);
    assert.equal(message.body.kind === 'inline' && message.body.encoding, 'base64');
    return queueMessageByteLength(message);
  }

  /** The largest random body whose inline message fits `limit` bytes, found with the real serializer. */
  function largestFitting(limit: number, overrides: Partial<MessageEnvelope> = {}): number {
    let low = 0;
    let high = Math.floor((limit * 3) / 4);
    while (low < high) {
      const middle = Math.ceil((low + high) / 2);
      if (realInlineBytes(middle, overrides) <= limit) low = middle;
      else high = middle - 1;
    }
    return low;
  }

  const sizedEnvelope = (size: number, overrides: Partial<MessageEnvelope> = {}): MessageEnvelope => ({ ...envelopeFor(Buffer.alloc(0), overrides), size });

  it('defaults to 200 KiB inline against the 256 KiB default queue limit', () => {
    assert.deepEqual(resolveQueueMessageLimits(), { inlineMaxBytes: DEFAULT_INLINE_MAX_BYTES, maxMessageBytes: SQS_DEFAULT_MAX_MESSAGE_BYTES });
    assert.equal(DEFAULT_INLINE_MAX_BYTES, 200 * 1024);
    assert.equal(SQS_DEFAULT_MAX_MESSAGE_BYTES, 256 * 1024);
  });

  it('sends a body that just fits the queue limit inline and one byte more to S3', () => {
    const fits = largestFitting(SQS_DEFAULT_MAX_MESSAGE_BYTES);
    assert.ok(realInlineBytes(fits) <= SQS_DEFAULT_MAX_MESSAGE_BYTES);
    assert.ok(realInlineBytes(fits + 1) > SQS_DEFAULT_MAX_MESSAGE_BYTES);

    const inline = planQueueMessage(sizedEnvelope(fits), fits);
    assert.equal(inline.kind, 'inline');
    assert.equal(inline.messageBytes, realInlineBytes(fits));
    assert.deepEqual(planQueueMessage(sizedEnvelope(fits + 1), fits + 1), { kind: 's3', reason: 'message-over-max-bytes', messageBytes: realInlineBytes(fits + 1) });
  });

  it('sends a body of exactly inlineMaxBytes inline and one byte more to S3', () => {
    const limits = { inlineMaxBytes: 300 * 1024, maxMessageBytes: SQS_MAX_MESSAGE_BYTES };
    assert.equal(planQueueMessage(sizedEnvelope(300 * 1024), 300 * 1024, limits).kind, 'inline');
    assert.deepEqual(planQueueMessage(sizedEnvelope(300 * 1024 + 1), 300 * 1024 + 1, limits), { kind: 's3', reason: 'body-over-inline-max' });
  });

  it('fits the largest inlineMaxBytes into 1 MiB with a long recipient list', () => {
    const rcptTo = Array.from({ length: 200 }, (_, index) => `recipient-number-${index}@subsidiary.contoso.com`);
    const plan = planQueueMessage(sizedEnvelope(MAX_INLINE_MAX_BYTES, { rcptTo }), MAX_INLINE_MAX_BYTES, { inlineMaxBytes: MAX_INLINE_MAX_BYTES, maxMessageBytes: SQS_MAX_MESSAGE_BYTES });
    assert.equal(plan.kind, 'inline');
    assert.ok(plan.messageBytes !== undefined && plan.messageBytes <= SQS_MAX_MESSAGE_BYTES);
  });

  it('counts multibyte envelope fields as the UTF-8 bytes they take', () => {
    const ascii = { client: { name: 'Buero-Scanner-Stockwerk', ip: '192.0.2.10' }, rcptTo: ['juergen@contoso.com'] };
    const multibyte = { client: { name: 'Büro-Scanner-Stockwerk', ip: '192.0.2.10' }, rcptTo: ['jürgen@contoso.com'] };
    // The same UTF-16 length once 'ue' became 'ü' (two chars → one), so align them on characters:
    const multibyteSameLength = { client: { name: 'Büro-Scanner-Stockwerkü', ip: '192.0.2.10' }, rcptTo: ['jürgen@contoso.comü'] };
    assert.equal(JSON.stringify(multibyteSameLength).length, JSON.stringify(ascii).length);

    const fits = largestFitting(SQS_DEFAULT_MAX_MESSAGE_BYTES, ascii);
    assert.equal(planQueueMessage(sizedEnvelope(fits, ascii), fits).kind, 'inline');
    // Same number of characters, four more bytes: the ASCII boundary body no longer fits.
    const plan = planQueueMessage(sizedEnvelope(fits, multibyteSameLength), fits);
    assert.equal(plan.kind, 's3');

    const body = Buffer.from('x');
    const message = inlineQueueMessage(envelopeFor(body, multibyte), body);
    const text = serializeQueueMessage(message);
    assert.equal(queueMessageByteLength(message), text.length + 2);
  });

  it('writes U+FFFF and U+FFFE as escapes (SQS refuses them raw) and reads them back', () => {
    const body = Buffer.from('x');
    const message = inlineQueueMessage(envelopeFor(body, { helo: 'odd\uFFFFhelo\uFFFE' }), body);
    const text = serializeQueueMessage(message);
    assert.doesNotMatch(text, /[\uFFFE\uFFFF]/);
    assert.match(text, /odd\\uffffhelo\\ufffe/);
    assert.equal(parseQueueMessage(text).envelope.helo, 'odd\uFFFFhelo\uFFFE');
  });

  it('refuses limits SQS or the encoding cannot honour, naming the option', () => {
    assert.throws(() => resolveQueueMessageLimits({ inlineMaxBytes: MAX_INLINE_MAX_BYTES + 1 }), /^RangeError: inlineMaxBytes must be a whole number from 0 to 716800, got 716801$/);
    assert.throws(() => resolveQueueMessageLimits({ inlineMaxBytes: -1 }), /inlineMaxBytes/);
    assert.throws(() => resolveQueueMessageLimits({ maxMessageBytes: SQS_MAX_MESSAGE_BYTES + 1 }), /^RangeError: maxMessageBytes must be a whole number from 1024 to 1048576, got 1048577$/);
    assert.throws(() => resolveQueueMessageLimits({ maxMessageBytes: 1.5 }), /maxMessageBytes/);
  });
});

describe('s3KeyFor', () => {
  const envelope = { id: 'Xf3pL0sQ7vNa2Wm8Jc4E', receivedAt: '2026-11-27T23:59:59.999Z' };

  it('puts the body under incoming/ by the UTC day it was received', () => {
    assert.equal(s3KeyFor(envelope), 'incoming/2026/11/27/Xf3pL0sQ7vNa2Wm8Jc4E.eml');
    assert.equal(s3KeyFor({ ...envelope, receivedAt: '2027-01-01T00:00:00Z' }), 'incoming/2027/01/01/Xf3pL0sQ7vNa2Wm8Jc4E.eml');
  });

  it('takes a configured prefix, with or without its trailing slash', () => {
    assert.equal(s3KeyFor(envelope, 'office-a/'), 'office-a/2026/11/27/Xf3pL0sQ7vNa2Wm8Jc4E.eml');
    assert.equal(s3KeyFor(envelope, 'office-a'), 'office-a/2026/11/27/Xf3pL0sQ7vNa2Wm8Jc4E.eml');
    assert.equal(s3KeyFor(envelope, ''), '2026/11/27/Xf3pL0sQ7vNa2Wm8Jc4E.eml');
  });
});

describe('s3QueueMessage', () => {
  it('builds a pointer that serializes and parses', () => {
    const envelope = envelopeFor(Buffer.from('big scan'));
    const message: QueueMessage = s3QueueMessage(envelope, { bucket: 'smarthost-bodies', key: s3KeyFor(envelope) });
    assert.deepEqual(parseQueueMessage(serializeQueueMessage(message)), message);
  });
});

describe('serializeQueueMessage', () => {
  it('refuses to write a message the consumer would refuse, naming the field', () => {
    const body = Buffer.from('x');
    const message = inlineQueueMessage(envelopeFor(body, { sha256: 'not-a-digest' }), body);
    assert.throws(() => serializeQueueMessage(message), (error: unknown) => error instanceof QueueMessageError && error.reason === 'invalid-field' && error.path === 'envelope.sha256');
  });
});

describe('envelope.noticeTo', () => {
  it('is absent from a message of an agent older than the field, which still parses', () => {
    const message = parseQueueMessage(fixture('v1-inline-base64.json'));
    assert.equal('noticeTo' in message.envelope, false);
    assert.equal(message.envelope.noticeTo, undefined);
  });

  it('carries the addresses the agent chose through serialize and parse', () => {
    const body = Buffer.from('Subject: x\r\n\r\nx\r\n');
    const message = inlineQueueMessage(envelopeFor(body, { noticeTo: ['scanner@contoso.com', 'it@contoso.com'] }), body);
    assert.deepEqual(parseQueueMessage(serializeQueueMessage(message)).envelope.noticeTo, ['scanner@contoso.com', 'it@contoso.com']);
  });

  it('refuses an address that is none, an empty list and more than MAX_NOTICE_TO, naming the field', () => {
    const body = Buffer.from('x');
    const text = (noticeTo: unknown) => JSON.stringify({ ...inlineQueueMessage(envelopeFor(body), body), envelope: { ...envelopeFor(body), noticeTo } });
    assert.equal(expectQueueMessageError(text(['scanner@contoso.com', 'it-department']), 'invalid-field', /^invalid field envelope\.noticeTo\[1\]: expected an email address$/).path, 'envelope.noticeTo[1]');
    assert.equal(expectQueueMessageError(text([]), 'invalid-field', /^invalid field envelope\.noticeTo: /).path, 'envelope.noticeTo');
    const many = Array.from({ length: MAX_NOTICE_TO + 1 }, (_, i) => `admin${i}@contoso.com`);
    assert.equal(expectQueueMessageError(text(many), 'invalid-field', /^invalid field envelope\.noticeTo: /).path, 'envelope.noticeTo');
    assert.deepEqual(parseQueueMessage(text(many.slice(0, MAX_NOTICE_TO))).envelope.noticeTo, many.slice(0, MAX_NOTICE_TO));
  });
});
