import { hostname } from 'node:os';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { S3Client } from '@aws-sdk/client-s3';
import { ChangeMessageVisibilityCommand, SQSClient } from '@aws-sdk/client-sqs';
import type { DeliveryLogger } from '../../delivery/logger.ts';
import { poolSourceFor, type PoolSource, type PoolSourceOptions } from '../../delivery/pool/poolSource.ts';
import type { RetryPolicy } from '../../delivery/retryPolicy.ts';
import type { UpstreamSource } from '../../delivery/submitterForUpstream.ts';
import { BodyStore } from './bodyStore.ts';
import { DeadLetterQueue } from './deadLetters.ts';
import { DeliveryLedger } from './deliveryLedger.ts';
import type { DeliveryMetrics } from './deliveryMetrics.ts';
import type { QueueRecordDeps } from './handleQueueRecord.ts';
import { MailboxBudgetTable } from './mailboxBudgetTable.ts';

/** The default retry schedule of the cloud path; the same as the agent's default. */
export const DEFAULT_RETRY_POLICY: RetryPolicy = {
  scheduleMs: [60_000, 5 * 60_000, 15 * 60_000, 3_600_000, 4 * 3_600_000],
  maxAgeMs: 2 * 24 * 3_600_000,
};

export interface DeliveryDepsOptions {
  queueUrl: string;
  deadLetterQueueUrl: string;
  ledgerTable: string;
  /** The upstream block (which may list `mailboxes`), inline or in a Secrets Manager secret. */
  upstream: UpstreamSource;
  /**
   * Instances delivering at once (the Lambda's maximum concurrency): each opens its part of a
   * mailbox's connections; the per-minute and per-day limits are counted for all of them in the
   * ledger table. @default 1
   */
  instances?: number;
  /** Seconds a read secret is reused. @default 300 */
  secretTtlSeconds?: number;
  /** Replaces the Secrets Manager client (tests). */
  secrets?: PoolSourceOptions['secrets'];
  metrics: DeliveryMetrics;
  logger: DeliveryLogger;
  leaseMs: number;
  /** How long each heartbeat hides a message being delivered. @default leaseMs */
  visibilityMs?: number;
  failureNoticeTo?: string;
  /** See QueueRecordDeps.delayedNoticeAfterMs. */
  delayedNoticeAfterMs?: number;
  /** See QueueRecordDeps.reportingHost. @default the host's name */
  reportingHost?: string;
  policy?: RetryPolicy;
  aws?: { sqs?: SQSClient; s3?: S3Client; dynamo?: DynamoDBClient };
}

/** Wires the AWS clients (the SDK's default chain and endpoints) and the mailbox pool into handleQueueRecord's dependencies. */
export function createDeliveryDeps(options: DeliveryDepsOptions): QueueRecordDeps & { sqs: SQSClient; pools: PoolSource } {
  const sqs = options.aws?.sqs ?? new SQSClient({});
  const s3 = options.aws?.s3 ?? new S3Client({});
  const dynamo = options.aws?.dynamo ?? new DynamoDBClient({});
  const pools = poolSourceFor(options.upstream, {
    sharedBy: options.instances ?? 1,
    // Every instance takes each mailbox's recipients per 24 hours and messages per minute from
    // the same items: together they stay within one mailbox's limits.
    budgetStore: new MailboxBudgetTable(dynamo, options.ledgerTable),
    shared: true,
    logger: options.logger,
    ...(options.secretTtlSeconds === undefined ? {} : { secretTtlSeconds: options.secretTtlSeconds }),
    ...(options.secrets ? { secrets: options.secrets } : {}),
  });
  return {
    sqs,
    pools,
    ledger: new DeliveryLedger(dynamo, options.ledgerTable),
    bodies: new BodyStore(s3),
    deadLetters: new DeadLetterQueue(sqs, options.deadLetterQueueUrl),
    pool: () => pools.current(),
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
    reportingHost: options.reportingHost ?? hostname(),
  };
}
