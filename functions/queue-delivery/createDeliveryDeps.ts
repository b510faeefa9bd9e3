import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { S3Client } from '@aws-sdk/client-s3';
import { ChangeMessageVisibilityCommand, SQSClient } from '@aws-sdk/client-sqs';
import type { DeliveryLogger } from '../../delivery/logger.ts';
import type { RetryPolicy } from '../../delivery/retryPolicy.ts';
import type { Submitter } from '../../delivery/smtp/submission.ts';
import { BodyStore } from './bodyStore.ts';
import { DeadLetterQueue } from './deadLetters.ts';
import { DeliveryLedger } from './deliveryLedger.ts';
import type { DeliveryMetrics } from './deliveryMetrics.ts';
import type { QueueRecordDeps } from './handleQueueRecord.ts';

/** The default retry schedule of the cloud path; the same as the agent's default. */
export const DEFAULT_RETRY_POLICY: RetryPolicy = {
  scheduleMs: [60_000, 5 * 60_000, 15 * 60_000, 3_600_000, 4 * 3_600_000],
  maxAgeMs: 2 * 24 * 3_600_000,
};

export interface DeliveryDepsOptions {
  queueUrl: string;
  deadLetterQueueUrl: string;
  ledgerTable: string;
  submitter: Submitter;
  mailbox: () => Promise<string | undefined>;
  metrics: DeliveryMetrics;
  logger: DeliveryLogger;
  leaseMs: number;
  /** How long each heartbeat hides a message being delivered. @default leaseMs */
  visibilityMs?: number;
  failureNoticeTo?: string;
  /** See QueueRecordDeps.delayedNoticeAfterMs. */
  delayedNoticeAfterMs?: number;
  policy?: RetryPolicy;
  aws?: { sqs?: SQSClient; s3?: S3Client; dynamo?: DynamoDBClient };
}

/** Wires the AWS clients (the SDK's default chain and endpoints) into handleQueueRecord's dependencies. */
export function createDeliveryDeps(options: DeliveryDepsOptions): QueueRecordDeps & { sqs: SQSClient } {
  const sqs = options.aws?.sqs ?? new SQSClient({});
  const s3 = options.aws?.s3 ?? new S3Client({});
  const dynamo = options.aws?.dynamo ?? new DynamoDBClient({});
  return {
    sqs,
    ledger: new DeliveryLedger(dynamo, options.ledgerTable),
    bodies: new BodyStore(s3),
    deadLetters: new DeadLetterQueue(sqs, options.deadLetterQueueUrl),
    submitter: options.submitter,
    mailbox: options.mailbox,
    changeVisibility: async (receiptHandle, seconds) => {
      await sqs.send(new ChangeMessageVisibilityCommand({ QueueUrl: options.queueUrl, ReceiptHandle: receiptHandle, VisibilityTimeout: seconds }));
    },
    metrics: options.metrics,
    logger: options.logger,
    policy: options.policy ?? DEFAULT_RETRY_POLICY,
    leaseMs: options.leaseMs,
    ...(options.visibilityMs === undefined ? {} : { visibilityMs: options.visibilityMs }),
    failureNoticeTo: options.failureNoticeTo,
    ...(options.delayedNoticeAfterMs !== undefined ? { delayedNoticeAfterMs: options.delayedNoticeAfterMs } : {}),
  };
}
