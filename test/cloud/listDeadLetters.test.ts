import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ChangeMessageVisibilityBatchCommand, ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import { DLQ_ATTRIBUTES } from '../../contract/cloudResources.ts';
import { envelopeIdOf, listDeadLetters } from '../../edge-agent/cloud/listDeadLetters.ts';
import { FakeSqs, type FakeMessage } from '../infra/helpers/fakeSqs.ts';

const DLQ_URL = 'https://sqs.eu-west-1.amazonaws.com/123456789012/Smarthost-MailDeadLetterQueue';
const T0 = Date.parse('2026-11-27T08:00:00Z');

function queueMessage(id: string): string {
  return JSON.stringify({ schemaVersion: 1, envelope: { id, rcptTo: ['you@contoso.com'] }, body: { kind: 'inline', encoding: 'base64', data: '' } });
}

function letter(n: number, extra: Partial<FakeMessage> = {}): FakeMessage {
  return {
    id: `sqs-${n}`,
    body: queueMessage(`msgid${String(n).padStart(4, '0')}`),
    sentAt: T0 + n * 60_000,
    attributes: {
      [DLQ_ATTRIBUTES.reason]: `reason ${n}`,
      [DLQ_ATTRIBUTES.kind]: 'permanent',
      [DLQ_ATTRIBUTES.reply]: '550 5.7.60 SMTP; Client does not have permissions to send as this sender',
    },
    ...extra,
  };
}

describe('listDeadLetters', () => {
  it('lists each message with its reason, reply and kind, its envelope id and when it failed, oldest first', async () => {
    const sqs = new FakeSqs([letter(2), letter(1)]);
    const letters = await listDeadLetters({ sqs: sqs.client, dlqUrl: DLQ_URL });
    assert.deepEqual(letters, [
      {
        id: 'msgid0001',
        reason: 'reason 1',
        reply: '550 5.7.60 SMTP; Client does not have permissions to send as this sender',
        kind: 'permanent',
        sentAt: new Date(T0 + 60_000),
        sqsMessageId: 'sqs-1',
      },
      {
        id: 'msgid0002',
        reason: 'reason 2',
        reply: '550 5.7.60 SMTP; Client does not have permissions to send as this sender',
        kind: 'permanent',
        sentAt: new Date(T0 + 120_000),
        sqsMessageId: 'sqs-2',
      },
    ]);
  });

  it('asks for the contract attributes with a short visibility timeout and hands every message back at once', async () => {
    const sqs = new FakeSqs([letter(1), letter(2), letter(3)]);
    await listDeadLetters({ sqs: sqs.client, dlqUrl: DLQ_URL, peekSeconds: 15 });
    const [first] = sqs.callsOf(ReceiveMessageCommand);
    assert.ok(first);
    assert.deepEqual(
      { ...first.input, MessageAttributeNames: [...(first.input.MessageAttributeNames ?? [])].sort() },
      {
        QueueUrl: DLQ_URL,
        MaxNumberOfMessages: 10,
        VisibilityTimeout: 15,
        WaitTimeSeconds: 1,
        MessageAttributeNames: [DLQ_ATTRIBUTES.kind, DLQ_ATTRIBUTES.reason, DLQ_ATTRIBUTES.reply].sort(),
        MessageSystemAttributeNames: ['SentTimestamp'],
        AttributeNames: ['All'],
      },
    );
    const handBacks = sqs.callsOf(ChangeMessageVisibilityBatchCommand);
    assert.equal(handBacks.length, 1);
    assert.deepEqual(
      handBacks[0]?.input.Entries?.map((entry) => entry.VisibilityTimeout),
      [0, 0, 0],
    );
    assert.equal(sqs.visibleCount(), 3, 'nothing consumed, nothing left hidden');
  });

  it('stops at max, asking SQS for no more than it needs', async () => {
    const sqs = new FakeSqs(Array.from({ length: 25 }, (_, n) => letter(n + 1)));
    const letters = await listDeadLetters({ sqs: sqs.client, dlqUrl: DLQ_URL, max: 12 });
    assert.equal(letters.length, 12);
    assert.deepEqual(
      sqs.callsOf(ReceiveMessageCommand).map((call) => call.input.MaxNumberOfMessages),
      [10, 2],
    );
    assert.deepEqual(
      sqs.callsOf(ChangeMessageVisibilityBatchCommand).map((call) => call.input.Entries?.length),
      [10, 2],
      'handed back in batches of at most 10',
    );
    assert.equal(sqs.visibleCount(), 25);
  });

  it('ends, listing each message once, when SQS hands the same messages out again', async () => {
    const sqs = new FakeSqs([letter(1), letter(2)]);
    sqs.hideOnReceive = false;
    const letters = await listDeadLetters({ sqs: sqs.client, dlqUrl: DLQ_URL });
    assert.deepEqual(
      letters.map((entry) => entry.sqsMessageId),
      ['sqs-1', 'sqs-2'],
    );
    assert.equal(sqs.callsOf(ReceiveMessageCommand).length, 2, 'the second receive brought nothing new');
  });

  it('finds an empty queue empty with one receive and nothing to hand back', async () => {
    const sqs = new FakeSqs();
    assert.deepEqual(await listDeadLetters({ sqs: sqs.client, dlqUrl: DLQ_URL }), []);
    assert.equal(sqs.callsOf(ReceiveMessageCommand).length, 1);
    assert.equal(sqs.callsOf(ChangeMessageVisibilityBatchCommand).length, 0);
  });

  it('lists what SQS moved itself (no reason attributes) and bodies that are no smarthost message', async () => {
    const sqs = new FakeSqs([
      { id: 'sqs-a', body: queueMessage('abcdefgh12'), sentAt: T0 },
      { id: 'sqs-b', body: 'hello', sentAt: T0 + 1, attributes: { [DLQ_ATTRIBUTES.reason]: 'not a smarthost queue message', [DLQ_ATTRIBUTES.kind]: 'malformed' } },
    ]);
    assert.deepEqual(await listDeadLetters({ sqs: sqs.client, dlqUrl: DLQ_URL }), [
      { id: 'abcdefgh12', reason: undefined, reply: undefined, kind: undefined, sentAt: new Date(T0), sqsMessageId: 'sqs-a' },
      { id: undefined, reason: 'not a smarthost queue message', reply: undefined, kind: 'malformed', sentAt: new Date(T0 + 1), sqsMessageId: 'sqs-b' },
    ]);
  });

  it('refuses a max or peek time SQS cannot work with', async () => {
    const sqs = new FakeSqs();
    await assert.rejects(listDeadLetters({ sqs: sqs.client, dlqUrl: DLQ_URL, max: 0 }), { name: 'RangeError', message: 'max must be a whole number of at least 1, got 0' });
    await assert.rejects(listDeadLetters({ sqs: sqs.client, dlqUrl: DLQ_URL, peekSeconds: 0 }), {
      name: 'RangeError',
      message: 'peekSeconds must be a whole number from 1 to 43200, got 0',
    });
    assert.equal(sqs.calls.length, 0);
  });
});

describe('envelopeIdOf', () => {
  const cases: readonly [string, string | undefined, string | undefined][] = [
    ['a version 1 queue message', queueMessage('q7Hk2mV9xTq4LpZ0aB3c'), 'q7Hk2mV9xTq4LpZ0aB3c'],
    ['a future schema version', JSON.stringify({ schemaVersion: 99, envelope: { id: 'future0001' } }), 'future0001'],
    ['an id at the top', JSON.stringify({ id: 'toplevel01' }), 'toplevel01'],
    ['JSON cut short', `{"schemaVersion":1,"envelope":{"id":"cutshort01","receivedAt":"2026-11-27T08:15:30Z","rcptTo":["a@b`, 'cutshort01'],
    ['JSON without an id', JSON.stringify({ envelope: { rcptTo: [] } }), undefined],
    ['a JSON array', '[1,2]', undefined],
    ['plain text', 'hello', undefined],
    ['no body', undefined, undefined],
  ];
  for (const [name, body, expected] of cases) {
    it(`reads ${name} as ${String(expected)}`, () => {
      assert.equal(envelopeIdOf(body), expected);
    });
  }
});
