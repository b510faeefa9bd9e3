import { createHash, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Context, SQSEvent, SQSRecord } from 'aws-lambda';
import { parseQueueMessage, serializeQueueMessage } from '../../contract/queueMessage.ts';

/** SQS Lambda events from test/fixtures/events, and what else a direct handler invocation needs. */

const EVENTS_DIR = new URL('../fixtures/events/', import.meta.url);

export interface LoadEventOptions {
  /**
   * Re-stamps `envelope.receivedAt` of every record that is a queue message (md5OfBody follows).
   * The fixtures carry fixed dates, and the retry policy gives up on transient failures of mail
   * older than two days: a test of a retry must not depend on the calendar.
   */
  receivedAt?: string;
}

export function loadEvent(name: string, options: LoadEventOptions = {}): SQSEvent {
  const event = JSON.parse(readFileSync(new URL(name, EVENTS_DIR), 'utf8')) as SQSEvent;
  if (options.receivedAt !== undefined) {
    const receivedAt = options.receivedAt;
    event.Records = event.Records.map((record) => {
      let body: string;
      try {
        const message = parseQueueMessage(record.body);
        body = serializeQueueMessage({ ...message, envelope: { ...message.envelope, receivedAt } });
      } catch {
        return record; // Not a queue message (the malformed fixture): left exactly as it is.
      }
      return { ...record, body, md5OfBody: md5(body) };
    });
  }
  return event;
}

/** Raw bytes of a fixture file (the S3 body). */
export function loadFixtureBytes(name: string): Buffer {
  return readFileSync(new URL(name, EVENTS_DIR));
}

export function recordOf(event: SQSEvent, index: number): SQSRecord {
  const record = event.Records[index];
  if (!record) throw new Error(`the event has no record ${index}`);
  return record;
}

/** A record as SQS would hand a message (back) to the function, e.g. after a redrive. */
export function sqsRecord(body: string, fields: { messageId?: string; receiptHandle?: string; receiveCount?: number; eventSourceARN?: string } = {}): SQSRecord {
  const now = Date.now();
  return {
    messageId: fields.messageId ?? randomUUID(),
    receiptHandle: fields.receiptHandle ?? `AQEB${Buffer.from(randomUUID()).toString('base64')}`,
    body,
    attributes: {
      ApproximateReceiveCount: String(fields.receiveCount ?? 1),
      SentTimestamp: String(now),
      SenderId: 'AROAEXAMPLEOPERATOR01:smarthost-redrive',
      ApproximateFirstReceiveTimestamp: String(now),
    },
    messageAttributes: {},
    md5OfBody: md5(body),
    eventSource: 'aws:sqs',
    eventSourceARN: fields.eventSourceARN ?? 'arn:aws:sqs:us-east-1:123456789012:smarthost-mail',
    awsRegion: 'us-east-1',
  };
}

/** The Lambda context of one invocation. */
export function lambdaContext(): Context {
  const deadline = Date.now() + 300_000;
  return {
    callbackWaitsForEmptyEventLoop: true,
    functionName: 'smarthost-delivery',
    functionVersion: '$LATEST',
    invokedFunctionArn: 'arn:aws:lambda:us-east-1:123456789012:function:smarthost-delivery',
    memoryLimitInMB: '1024',
    awsRequestId: randomUUID(),
    logGroupName: '/aws/lambda/smarthost-delivery',
    logStreamName: '2026/11/27/[$LATEST]0123456789abcdef0123456789abcdef',
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
    done: () => undefined,
    fail: () => undefined,
    succeed: () => undefined,
  };
}

function md5(text: string): string {
  return createHash('md5').update(text, 'utf8').digest('hex');
}
