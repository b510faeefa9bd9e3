import { setTimeout as delay } from 'node:timers/promises';
import {
  ChangeMessageVisibilityBatchCommand,
  DeleteMessageBatchCommand,
  type BatchResultErrorEntry,
  type Message,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import type { DeliveryLogger } from '../../delivery/logger.ts';

/** SQS's most entries in one batch request. */
const SQS_BATCH_ENTRIES = 10;

/** How a batch call is retried: attempts per entry and the pause before each retry. */
export interface BatchRetry {
  /** @default 3 */
  attempts?: number;
  /** @default 200 (ms; doubled each time) */
  backoffMs?: number;
}

type BatchAction =
  | { kind: 'delete' }
  /** ChangeMessageVisibility of every message to `seconds`. */
  | { kind: 'visibility'; seconds: number };

/**
 * DeleteMessageBatch or ChangeMessageVisibilityBatch over any number of messages, 10 at a time.
 * Either call can succeed while refusing single entries (`Failed`); those, and the whole batch
 * when the call itself fails, are sent again up to `attempts` times, then logged with each
 * message's SQS id and SQS's reason.
 * @returns the messages the action could not be applied to
 */
export async function applyToMessages(
  sqs: Pick<SQSClient, 'send'>,
  queueUrl: string,
  messages: readonly Message[],
  action: BatchAction,
  logger: DeliveryLogger,
  retry: BatchRetry = {},
): Promise<Message[]> {
  const attempts = retry.attempts ?? 3;
  const failed: Message[] = [];
  for (let start = 0; start < messages.length; start += SQS_BATCH_ENTRIES) {
    let pending = messages.slice(start, start + SQS_BATCH_ENTRIES);
    const reasons = new Map<Message, string>();
    for (let attempt = 1; attempt <= attempts && pending.length > 0; attempt++) {
      if (attempt > 1) await delay((retry.backoffMs ?? 200) * 2 ** (attempt - 2));
      try {
        const errors = await send(sqs, queueUrl, pending, action);
        const byId = new Map(errors.map((entry) => [entry.Id, entry]));
        const again: Message[] = [];
        // Entry ids are the message's index in this request.
        pending.forEach((message, index) => {
          const entry = byId.get(String(index));
          if (!entry) return;
          const reason = `${entry.Code ?? 'error'}${entry.Message ? `: ${entry.Message}` : ''}`;
          if (entry.SenderFault) {
            // Refused for what the request says (an invalid receipt): sending it again cannot help.
            failed.push(logFailure(logger, action, message, reason));
          } else {
            reasons.set(message, reason);
            again.push(message);
          }
        });
        pending = again;
      } catch (error) {
        for (const message of pending) reasons.set(message, `${(error as Error).name}: ${(error as Error).message?.slice(0, 200)}`);
      }
    }
    for (const message of pending) failed.push(logFailure(logger, action, message, reasons.get(message) ?? 'unknown'));
  }
  return failed;
}

function logFailure(logger: DeliveryLogger, action: BatchAction, message: Message, reason: string): Message {
  if (action.kind === 'delete') {
    logger.error({ sqsMessageId: message.MessageId, reason }, 'could not delete a handled message; it will be received again and skipped as already delivered');
  } else {
    logger.error({ sqsMessageId: message.MessageId, reason, visibilitySeconds: action.seconds }, 'could not change the visibility of a message; it comes back when its visibility timeout ends');
  }
  return message;
}

async function send(sqs: Pick<SQSClient, 'send'>, queueUrl: string, messages: readonly Message[], action: BatchAction): Promise<BatchResultErrorEntry[]> {
  if (action.kind === 'delete') {
    const result = await sqs.send(
      new DeleteMessageBatchCommand({ QueueUrl: queueUrl, Entries: messages.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle })) }),
    );
    return result.Failed ?? [];
  }
  const result = await sqs.send(
    new ChangeMessageVisibilityBatchCommand({
      QueueUrl: queueUrl,
      Entries: messages.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle, VisibilityTimeout: action.seconds })),
    }),
  );
  return result.Failed ?? [];
}
