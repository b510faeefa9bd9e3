/**
 * `smarthost worker` with test timings, run as its own process so the crash suite can kill -9 it:
 * `node --import tsx test/crash/workerProcess.ts --config FILE`.
 *
 * It wires exactly what functions/worker/startWorker.ts wires (submitterFor, createDeliveryDeps,
 * SqsPollingWorker, the same handleQueueRecord and ledger), with three timings startWorker fixes
 * for production and a crash test cannot wait for: a 6-minute ledger lease and a 360 s
 * visibility timeout (a message a killed worker was delivering would come back only after them)
 * and a 20 s long poll (local-aws-sqs holds a poll for 10 messages its full wait). Here: a 3 s
 * lease, shorter than the 5 s visibility timeout, so a redelivered message finds the lease of the
 * killed worker expired rather than "busy".
 */
import { parseArgs } from 'node:util';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { S3Client } from '@aws-sdk/client-s3';
import { SQSClient } from '@aws-sdk/client-sqs';
import { submitterFor } from '../../edge-agent/agent.ts';
import { loadConfig } from '../../edge-agent/config/loadConfig.ts';
import { createLogger } from '../../edge-agent/logger.ts';
import { createDeliveryDeps } from '../../functions/delivery/createDeliveryDeps.ts';
import { noMetrics } from '../../functions/delivery/deliveryMetrics.ts';
import { SqsPollingWorker } from '../../functions/worker/sqsPollingWorker.ts';

const TEST_WORKER_TIMINGS = { leaseMs: 3_000, visibilitySeconds: 5, waitSeconds: 1, errorBackoffMs: 250 } as const;

const { values } = parseArgs({ options: { config: { type: 'string' } } });
const config = await loadConfig({ path: values.config });
const sqsConfig = config.queue.sqs;
if (!sqsConfig?.deadLetterQueueUrl || !sqsConfig.idempotencyTable || !config.upstream) {
  throw new Error('the test worker needs queue.sqs (with deadLetterQueueUrl and idempotencyTable) and upstream');
}
const logger = createLogger(config.log.level);
const sqs = new SQSClient({});
const { submitter, mailbox } = submitterFor(config, logger);
const deps = createDeliveryDeps({
  queueUrl: sqsConfig.queueUrl,
  deadLetterQueueUrl: sqsConfig.deadLetterQueueUrl,
  ledgerTable: sqsConfig.idempotencyTable,
  submitter,
  mailbox: async () => mailbox,
  metrics: noMetrics,
  logger,
  leaseMs: TEST_WORKER_TIMINGS.leaseMs,
  policy: { scheduleMs: config.retry.schedule, maxAgeMs: config.retry.maxAge },
  aws: { sqs, s3: new S3Client({}), dynamo: new DynamoDBClient({}) },
});
const worker = new SqsPollingWorker({
  sqs,
  queueUrl: sqsConfig.queueUrl,
  deps,
  logger,
  waitSeconds: TEST_WORKER_TIMINGS.waitSeconds,
  visibilitySeconds: TEST_WORKER_TIMINGS.visibilitySeconds,
  errorBackoffMs: TEST_WORKER_TIMINGS.errorBackoffMs,
});
worker.start();
logger.info({ queueUrl: sqsConfig.queueUrl }, 'smarthost worker polling');
process.once('SIGTERM', () => {
  void worker
    .stop()
    .then(() => submitter.close())
    .then(() => process.exit(0));
});
