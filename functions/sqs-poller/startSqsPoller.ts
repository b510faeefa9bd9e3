import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { S3Client } from '@aws-sdk/client-s3';
import { SQSClient } from '@aws-sdk/client-sqs';
import type { DeliveryLogger } from '../../delivery/logger.ts';
import type { RetryPolicy } from '../../delivery/retryPolicy.ts';
import { poolMembers } from '../../delivery/pool/poolMembers.ts';
import type { UpstreamSource } from '../../delivery/submitterForUpstream.ts';
import { createDeliveryDeps } from '../queue-delivery/createDeliveryDeps.ts';
import { noMetrics } from '../queue-delivery/deliveryMetrics.ts';
import { SqsPoller } from './sqsPoller.ts';

/** What `smarthost worker` needs, already validated by whoever read the configuration. */
export interface SqsPollerSettings {
  queueUrl: string;
  deadLetterQueueUrl: string;
  ledgerTable: string;
  region?: string;
  upstream: UpstreamSource;
  policy: RetryPolicy;
  /** Milliseconds: long-poll wait, visibility timeout, ledger lease, back-off after queue errors. */
  timings: { pollWait: number; visibilityTimeout: number; lease: number; errorBackoff: number };
  /** Gets the failure notice about every dead-lettered message, as the Lambda's failureNoticeTo does. */
  failureNoticeTo?: string;
  /** How long after arrival a held message gets its "Delayed" notice (ms), as the Lambda's SMARTHOST_DELAYED_NOTICE_AFTER; absent: none. */
  delayedNoticeAfterMs?: number;
}

export interface RunningSqsPoller {
  poller: SqsPoller;
  stop(): Promise<void>;
}

/** `smarthost worker`: the delivery function's record handler, fed by long-polling the queue. */
export async function startSqsPoller(
  settings: SqsPollerSettings,
  logger: DeliveryLogger,
  aws: { sqs?: SQSClient; s3?: S3Client; dynamo?: DynamoDBClient } = {},
): Promise<RunningSqsPoller> {
  const region = settings.region ? { region: settings.region } : {};
  const sqs = aws.sqs ?? new SQSClient(region);
  const deps = createDeliveryDeps({
    queueUrl: settings.queueUrl,
    deadLetterQueueUrl: settings.deadLetterQueueUrl,
    ledgerTable: settings.ledgerTable,
    upstream: settings.upstream,
    metrics: noMetrics,
    logger,
    leaseMs: settings.timings.lease,
    visibilityMs: settings.timings.visibilityTimeout,
    policy: settings.policy,
    ...(settings.failureNoticeTo ? { failureNoticeTo: settings.failureNoticeTo } : {}),
    ...(settings.delayedNoticeAfterMs !== undefined ? { delayedNoticeAfterMs: settings.delayedNoticeAfterMs } : {}),
    aws: { sqs, s3: aws.s3 ?? new S3Client(region), dynamo: aws.dynamo ?? new DynamoDBClient(region) },
  });
  const { timings } = settings;
  const poller = new SqsPoller({
    sqs,
    queueUrl: settings.queueUrl,
    deps,
    logger,
    waitSeconds: Math.round(timings.pollWait / 1000),
    visibilitySeconds: Math.ceil(timings.visibilityTimeout / 1000),
    errorBackoffMs: timings.errorBackoff,
    concurrency: concurrencyOf(settings.upstream),
  });
  poller.start();
  logger.info({ queueUrl: settings.queueUrl }, 'smarthost worker polling');
  return {
    poller,
    async stop() {
      await poller.stop();
      await deps.pools.close();
    },
  };
}

/** Exchange Online's concurrent connections per mailbox, used for a secret's pool (read only when the first record comes). */
const SECRET_DEFAULT_CONNECTIONS = 3;

/** Records in flight at once: every mailbox's connections (a record waits in the pool for its own mailbox's). */
function concurrencyOf(upstream: UpstreamSource): number {
  if ('secretArn' in upstream) return SECRET_DEFAULT_CONNECTIONS;
  return poolMembers(upstream).reduce((sum, member) => sum + member.upstream.rateLimit.connections, 0);
}
