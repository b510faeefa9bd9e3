import { ChangeMessageVisibilityBatchCommand, ReceiveMessageCommand, type Message, type SQSClient } from '@aws-sdk/client-sqs';
import { DLQ_ATTRIBUTES } from '../../contract/cloudResources.ts';

/** SQS returns at most this many messages per ReceiveMessage. */
const RECEIVE_BATCH = 10;

export interface ListedDeadLetter {
  /** The agent's message id, from the body; undefined when the body is no smarthost message. */
  id: string | undefined;
  /** Why the delivery function gave up; undefined when SQS moved it (after maxReceiveCount). */
  reason: string | undefined;
  /** The upstream's reply, when there was one. */
  reply: string | undefined;
  /** permanent, config (needs the operator), transient (gave up after the maximum age), malformed. */
  kind: string | undefined;
  /** When the message entered the dead-letter queue. */
  sentAt: Date | undefined;
  /** SQS's id of this dead-letter message. */
  sqsMessageId: string;
}

export interface ListDeadLettersOptions {
  sqs: Pick<SQSClient, 'send'>;
  /** The stack's DeadLetterQueueUrl output. */
  dlqUrl: string;
  /**
   * List at most this many.
   * @default 100
   */
  max?: number;
  /**
   * Seconds each listed message stays hidden while the listing runs (so it is not counted twice);
   * they are made visible again as soon as the listing is done.
   * @default 30
   */
  peekSeconds?: number;
}

/**
 * What waits in the dead-letter queue and why, without taking anything out: messages are received
 * with a short visibility timeout, read, and handed back (visibility 0) at the end. Oldest first.
 * The reason, reply and kind come from the message attributes the delivery function sets; the id
 * from the body, read leniently so that even a malformed message is listed.
 */
export async function listDeadLetters(options: ListDeadLettersOptions): Promise<ListedDeadLetter[]> {
  const { sqs, dlqUrl } = options;
  const max = options.max ?? 100;
  const peekSeconds = options.peekSeconds ?? 30;
  if (!Number.isInteger(max) || max < 1) {
    throw new RangeError(`max must be a whole number of at least 1, got ${String(max)}`);
  }
  if (!Number.isInteger(peekSeconds) || peekSeconds < 1 || peekSeconds > 43_200) {
    throw new RangeError(`peekSeconds must be a whole number from 1 to 43200, got ${String(peekSeconds)}`);
  }

  const seen = new Map<string, Message>();
  while (seen.size < max) {
    const received = await sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: dlqUrl,
        MaxNumberOfMessages: Math.min(RECEIVE_BATCH, max - seen.size),
        VisibilityTimeout: peekSeconds,
        // A short long-poll asks every SQS server, so a small queue is not reported empty by chance.
        WaitTimeSeconds: 1,
        MessageAttributeNames: Object.values(DLQ_ATTRIBUTES),
        MessageSystemAttributeNames: ['SentTimestamp'],
        // The deprecated spelling as well: local stand-ins only read this one.
        AttributeNames: ['All'],
      }),
    );
    let fresh = 0;
    for (const message of received.Messages ?? []) {
      if (!message.MessageId) continue;
      if (!seen.has(message.MessageId)) fresh += 1;
      seen.set(message.MessageId, message);
    }
    if (fresh === 0) break;
  }

  await handBack(sqs, dlqUrl, [...seen.values()]);
  return [...seen.values()].map(toListedDeadLetter).sort(oldestFirst);
}

/**
 * Makes the listed messages visible again at once. Best effort: a message whose hand-back fails
 * (its receipt handle expired, no permission) simply reappears when `peekSeconds` is over.
 */
async function handBack(sqs: Pick<SQSClient, 'send'>, dlqUrl: string, messages: Message[]): Promise<void> {
  const entries = messages
    .filter((message) => message.ReceiptHandle)
    .map((message, index) => ({ Id: String(index), ReceiptHandle: message.ReceiptHandle, VisibilityTimeout: 0 }));
  for (let start = 0; start < entries.length; start += RECEIVE_BATCH) {
    await sqs
      .send(new ChangeMessageVisibilityBatchCommand({ QueueUrl: dlqUrl, Entries: entries.slice(start, start + RECEIVE_BATCH) }))
      .catch(() => undefined);
  }
}

function toListedDeadLetter(message: Message): ListedDeadLetter {
  const attribute = (name: string) => message.MessageAttributes?.[name]?.StringValue;
  const sent = Number(message.Attributes?.SentTimestamp);
  return {
    id: envelopeIdOf(message.Body),
    reason: attribute(DLQ_ATTRIBUTES.reason),
    reply: attribute(DLQ_ATTRIBUTES.reply),
    kind: attribute(DLQ_ATTRIBUTES.kind),
    sentAt: Number.isFinite(sent) && sent > 0 ? new Date(sent) : undefined,
    sqsMessageId: message.MessageId ?? '',
  };
}

function oldestFirst(a: ListedDeadLetter, b: ListedDeadLetter): number {
  return (a.sentAt?.getTime() ?? Number.POSITIVE_INFINITY) - (b.sentAt?.getTime() ?? Number.POSITIVE_INFINITY);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

const ID_IN_TEXT = /"envelope"\s*:\s*\{[^{}]*?"id"\s*:\s*"([A-Za-z0-9_-]{1,64})"/;

/**
 * The agent's message id in a queue message body, without requiring the body to be valid: the
 * dead-letter queue is where invalid and future-version messages end up, and they must still be
 * listed. JSON with `envelope.id` (any schema version), else `id` at the top, else an
 * `"envelope": { ... "id": "..." }` found in text that is not JSON (cut short, say).
 */
export function envelopeIdOf(body: string | undefined): string | undefined {
  if (!body) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(body);
  } catch {
    return ID_IN_TEXT.exec(body)?.[1];
  }
  if (!isRecord(value)) return undefined;
  if (isRecord(value.envelope) && typeof value.envelope.id === 'string') return value.envelope.id;
  return typeof value.id === 'string' ? value.id : undefined;
}
