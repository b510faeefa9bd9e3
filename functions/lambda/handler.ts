import { BatchProcessor, EventType, processPartialResponse } from '@aws-lambda-powertools/batch';
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import { CLAIM_MARGIN_MS, DELIVERY_METRICS, DELIVERY_METRICS_NAMESPACE, FAILURE_CLASS_DIMENSION } from '../../contract/cloudResources.ts';
import type { DeliveryLogger } from '../../delivery/logger.ts';
import { createDeliveryDeps } from '../queue-delivery/createDeliveryDeps.ts';
import type { DeliveryMetrics } from '../queue-delivery/deliveryMetrics.ts';
import { handleQueueRecord } from '../queue-delivery/handleQueueRecord.ts';
import { credentialDaysLeft } from '../queue-delivery/credentialDaysLeft.ts';
import { readFunctionEnv } from './functionEnv.ts';

// Built once per container and reused across invocations: the secret cache, the mailbox pool and
// its SMTP connections (one authenticated connection serves the whole batch and the next ones), the AWS clients.
const env = readFunctionEnv(process.env);
const logger = new Logger({ serviceName: 'smarthost-delivery' });
const metrics = new Metrics({ namespace: DELIVERY_METRICS_NAMESPACE, serviceName: 'smarthost-delivery' });
const processor = new BatchProcessor(EventType.SQS);

const deliveryLogger: DeliveryLogger = {
  debug: (fields, message) => logger.debug(message, fields),
  info: (fields, message) => logger.info(message, fields),
  warn: (fields, message) => logger.warn(message, fields),
  error: (fields, message) => logger.error(message, fields),
};

/**
 * The logger of one record: its lines carry the record's SQS message id. Not logger.appendKeys:
 * the processor runs a batch's records side by side, and a key appended to the shared logger
 * would put the last record's id on every record's lines (and on the next invocation's).
 */
function recordLogger(sqsMessageId: string): DeliveryLogger {
  return {
    debug: (fields, message) => deliveryLogger.debug({ sqsMessageId, ...fields }, message),
    info: (fields, message) => deliveryLogger.info({ sqsMessageId, ...fields }, message),
    warn: (fields, message) => deliveryLogger.warn({ sqsMessageId, ...fields }, message),
    error: (fields, message) => deliveryLogger.error({ sqsMessageId, ...fields }, message),
  };
}

const deliveryMetrics: DeliveryMetrics = {
  delivered(latencyMs, bytes) {
    metrics.addMetric(DELIVERY_METRICS.delivered, MetricUnit.Count, 1);
    metrics.addMetric(DELIVERY_METRICS.latency, MetricUnit.Milliseconds, latencyMs);
    metrics.addMetric(DELIVERY_METRICS.bytes, MetricUnit.Bytes, bytes);
  },
  failed(kind) {
    // Once without dimensions (what the alarm watches) and once by failure class.
    metrics.addMetric(DELIVERY_METRICS.failed, MetricUnit.Count, 1);
    const single = metrics.singleMetric();
    single.addDimension(FAILURE_CLASS_DIMENSION, kind);
    single.addMetric(DELIVERY_METRICS.failed, MetricUnit.Count, 1);
  },
  retried(throttled) {
    metrics.addMetric(DELIVERY_METRICS.retried, MetricUnit.Count, 1);
    if (throttled) metrics.addMetric(DELIVERY_METRICS.throttled, MetricUnit.Count, 1);
  },
  heldForOperator() {
    metrics.addMetric(DELIVERY_METRICS.heldForOperator, MetricUnit.Count, 1);
  },
  deferred() {
    metrics.addMetric(DELIVERY_METRICS.deferred, MetricUnit.Count, 1);
  },
  credentialExpiresIn(days) {
    metrics.addMetric(DELIVERY_METRICS.credentialExpiresInDays, MetricUnit.Count, days);
  },
};

const deps = createDeliveryDeps({
  queueUrl: env.queueUrl,
  deadLetterQueueUrl: env.deadLetterQueueUrl,
  ledgerTable: env.ledgerTable,
  upstream: { secretArn: env.secretArn },
  instances: env.instances,
  secretTtlSeconds: env.secretTtlSeconds,
  metrics: deliveryMetrics,
  logger: deliveryLogger,
  leaseMs: env.leaseMs,
  visibilityMs: env.leaseMs,
  failureNoticeTo: env.failureNoticeTo,
  ...(env.delayedNoticeAfterMs !== undefined ? { delayedNoticeAfterMs: env.delayedNoticeAfterMs } : {}),
  ...(env.functionName ? { reportingHost: env.functionName } : {}),
});

/**
 * The records of one invocation: their claims (visibility and ledger lease, held by the heartbeat)
 * reach at most CLAIM_MARGIN_MS past the invocation's deadline, so a function that times out
 * leaves no claim hiding its messages for longer than that.
 */
function recordHandlerFor(claimDeadline: number): (record: SQSRecord) => Promise<void> {
  return async (record) => {
    await handleQueueRecord(
      { messageId: record.messageId, body: record.body, receiptHandle: record.receiptHandle, receiveCount: Number(record.attributes.ApproximateReceiveCount) || 1 },
      { ...deps, logger: recordLogger(record.messageId), claimDeadline },
    );
  };
}

export const handler = async (event: SQSEvent, context: Context): Promise<SQSBatchResponse> => {
  logger.addContext(context);
  const recordHandler = recordHandlerFor(Date.now() + context.getRemainingTimeInMillis() + CLAIM_MARGIN_MS);
  try {
    // A batch where every record waits for a retry is normal here, not a function error.
    return await processPartialResponse(event, recordHandler, processor, { context, throwOnFullBatchFailure: false });
  } finally {
    const days = credentialDaysLeft(deps.pools.credentialHealth(), Date.now());
    if (days !== undefined) deliveryMetrics.credentialExpiresIn(days);
    metrics.publishStoredMetrics();
  }
};
