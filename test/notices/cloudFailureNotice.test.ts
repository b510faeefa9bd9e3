import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { simpleParser } from 'mailparser';
import { inlineQueueMessage, serializeQueueMessage } from '../../contract/queueMessage.ts';
import { silentLogger, type DeliveryLogger } from '../../delivery/logger.ts';
import { SubmitError, type Submitter } from '../../delivery/smtp/submission.ts';
import { BodyStore } from '../../functions/queue-delivery/bodyStore.ts';
import { DeadLetterQueue } from '../../functions/queue-delivery/deadLetters.ts';
import { DeliveryLedger } from '../../functions/queue-delivery/deliveryLedger.ts';
import { noMetrics } from '../../functions/queue-delivery/deliveryMetrics.ts';
import { MailboxPool } from '../../delivery/pool/mailboxPool.ts';
import { handleQueueRecord } from '../../functions/queue-delivery/handleQueueRecord.ts';
import { startLocalDynamo, type LocalDynamo } from '../../testbed/aws/localDynamo.ts';
import { scannerEnvelope } from '../../testbed/helpers/scannerEnvelope.ts';

const BODY_MARKER = 'PAYROLL-SCAN-CONFIDENTIAL-4711';
const NO_SUCH_USER = { responseCode: 550, response: '550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup', command: 'RCPT TO', message: 'no such user' };

/** The cloud runtime's notice for a dead-lettered message: the same RFC 3464 report as the office box's. */
describe('failure notice from the cloud (queue record handler)', () => {
  let dynamo: LocalDynamo;
  before(async () => {
    dynamo = await startLocalDynamo();
  });
  after(async () => {
    await dynamo.stop();
  });

  async function deadLetter(id: string, mailFrom: string, headers: string): Promise<{ notices: { from: string; to: string[]; raw: Buffer }[]; infos: string[] }> {
    const notices: { from: string; to: string[]; raw: Buffer }[] = [];
    let calls = 0;
    const submitter: Submitter = {
      async submit(message) {
        const chunks: Buffer[] = [];
        for await (const chunk of message.raw) chunks.push(chunk as Buffer);
        if (calls++ === 0) throw new SubmitError(NO_SUCH_USER);
        notices.push({ from: message.from, to: message.to, raw: Buffer.concat(chunks) });
        return { accepted: message.to, rejected: [] };
      },
      close: async () => undefined,
    };
    const body = Buffer.from(`${headers}Subject: Scan 4711\r\n\r\n${BODY_MARKER}\r\n`);
    const envelope = scannerEnvelope(id, body, { mailFrom, rcptTo: ['nobody@contoso.com'] });
    const infos: string[] = [];
    const logger: DeliveryLogger = { ...silentLogger, info: (fields, message) => infos.push(`${message} ${JSON.stringify(fields)}`) };
    const result = await handleQueueRecord(
      { messageId: `sqs-${id}`, body: serializeQueueMessage(inlineQueueMessage(envelope, body)), receiptHandle: 'h1', receiveCount: 1 },
      {
        ledger: new DeliveryLedger(dynamo.client, dynamo.tableName),
        bodies: new BodyStore({ send: async () => assert.fail('inline bodies need no S3') }),
        deadLetters: new DeadLetterQueue({ send: async () => undefined } as never, 'http://127.0.0.1/dlq'),
        pool: async () => new MailboxPool([{ mailbox: 'relay@contoso.com', submitter, route: 'upstream', connections: 1 }]),
        changeVisibility: async () => undefined,
        metrics: noMetrics,
        logger,
        policy: { scheduleMs: [10], maxAgeMs: 86_400_000 },
        leaseMs: 60_000,
        failureNoticeTo: 'it@contoso.com',
        reportingHost: 'smarthost-delivery',
      },
    );
    assert.equal(result, 'dead-lettered');
    return { notices, infos };
  }

  it('sends the RFC 3464 report to the operator with envelope sender <>, the header and not the body', async () => {
    const { notices } = await deadLetter('cloudnotice0001', 'scanner@contoso.com', '');
    assert.equal(notices.length, 1);
    const [notice] = notices;
    assert.equal(notice?.from, '');
    assert.deepEqual(notice?.to, ['it@contoso.com']);
    const raw = notice?.raw.toString('utf8') ?? '';
    assert.doesNotMatch(raw, new RegExp(BODY_MARKER));
    const parsed = await simpleParser(notice?.raw ?? Buffer.alloc(0));
    assert.equal(parsed.subject, 'Undeliverable: Scan 4711');
    assert.equal(parsed.from?.value[0]?.address, 'relay@contoso.com');
    assert.match(parsed.text ?? '', /smarthost redrive/);
    const contentType = parsed.headers.get('content-type') as { value: string; params: Record<string, string> };
    assert.equal(contentType.value, 'multipart/report');
    const parts = raw.split(`--${contentType.params.boundary}`).slice(1, -1);
    assert.deepEqual(parts.map((p) => /Content-Type: ([^;\r\n]+)/i.exec(p)?.[1]), ['text/plain', 'message/delivery-status', 'text/rfc822-headers']);
    assert.match(parts[1] ?? '', /^Final-Recipient: rfc822; nobody@contoso\.com\r$/m);
    assert.match(parts[1] ?? '', /^Status: 5\.1\.10\r$/m);
    assert.match(parts[1] ?? '', /^Reporting-MTA: dns; smarthost-delivery\r$/m);
    assert.match(parts[2] ?? '', /^Subject: Scan 4711\r$/m);
  });

  it('sends none for a message from <> or an Auto-Submitted one', async () => {
    const nullSender = await deadLetter('cloudnotice0002', '', '');
    assert.deepEqual(nullSender.notices, []);
    assert.ok(nullSender.infos.some((l) => /no failure notice.*the sender is <>/.test(l)));
    const automatic = await deadLetter('cloudnotice0003', 'ups@contoso.com', 'Auto-Submitted: auto-generated\r\n');
    assert.deepEqual(automatic.notices, []);
  });
});
