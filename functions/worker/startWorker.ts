import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { S3Client } from '@aws-sdk/client-s3';
import { SQSClient } from '@aws-sdk/client-sqs';
import type { AgentConfig } from '../../edge-agent/config/agentConfigSchema.ts';
import { ConfigError } from '../../edge-agent/config/errors.ts';
import { submitterFor } from '../../edge-agent/agent.ts';
import type { Logger } from '../../edge-agent/logger.ts';
import { SecretUpstreamSubmitter } from '../../delivery/secretUpstreamSubmitter.ts';
import { createDeliveryDeps } from '../delivery/createDeliveryDeps.ts';
import { noMetrics } from '../delivery/deliveryMetrics.ts';
import { SqsPollingWorker } from './sqsPollingWorker.ts';

export interface RunningWorker {
  worker: SqsPollingWorker;
  stop(): Promise<void>;
}

/** `smarthost worker`: checks what it needs from the config, then polls the queue. */
export async function startWorker(
  config: AgentConfig,
  logger: Logger,
  aws: { sqs?: SQSClient; s3?: S3Client; dynamo?: DynamoDBClient } = {},
): Promise<RunningWorker> {
  const sqsConfig = config.queue.sqs;
  const problems: string[] = [];
  if (!sqsConfig) problems.push('queue.sqs: required by smarthost worker (queueUrl, deadLetterQueueUrl, idempotencyTable)');
  if (sqsConfig && !sqsConfig.deadLetterQueueUrl) problems.push('queue.sqs.deadLetterQueueUrl: required by smarthost worker');
  if (sqsConfig && !sqsConfig.idempotencyTable) problems.push('queue.sqs.idempotencyTable: required by smarthost worker');
  if (!config.upstream) problems.push('upstream: required by smarthost worker (the block, or secretArn)');
  if (problems.length > 0 || !sqsConfig?.deadLetterQueueUrl || !sqsConfig.idempotencyTable) {
    throw new ConfigError(problems);
  }
  const region = sqsConfig.region ? { region: sqsConfig.region } : {};
  const sqs = aws.sqs ?? new SQSClient(region);
  const { submitter, mailbox } = await submitterFor(config, logger);
  const deps = createDeliveryDeps({
    queueUrl: sqsConfig.queueUrl,
    deadLetterQueueUrl: sqsConfig.deadLetterQueueUrl,
    ledgerTable: sqsConfig.idempotencyTable,
    submitter,
    mailbox: async () => (submitter instanceof SecretUpstreamSubmitter ? submitter.mailbox() : mailbox),
    metrics: noMetrics,
    logger,
    leaseMs: sqsConfig.worker.lease,
    policy: { scheduleMs: config.retry.schedule, maxAgeMs: config.retry.maxAge },
    aws: { sqs, s3: aws.s3 ?? new S3Client(region), dynamo: aws.dynamo ?? new DynamoDBClient(region) },
  });
  const timings = sqsConfig.worker;
  const worker = new SqsPollingWorker({
    sqs,
    queueUrl: sqsConfig.queueUrl,
    deps,
    logger,
    waitSeconds: Math.round(timings.pollWait / 1000),
    visibilitySeconds: Math.ceil(timings.visibilityTimeout / 1000),
    errorBackoffMs: timings.errorBackoff,
  });
  worker.start();
  logger.info({ queueUrl: sqsConfig.queueUrl }, 'smarthost worker polling');
  return {
    worker,
    async stop() {
      await worker.stop();
      await submitter.close();
    },
  };
}
