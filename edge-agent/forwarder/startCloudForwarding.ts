import { CloudWatchClient } from '@aws-sdk/client-cloudwatch';
import { S3Client } from '@aws-sdk/client-s3';
import { SQSClient } from '@aws-sdk/client-sqs';
import type { MessageEnvelope } from '../../contract/messageEnvelope.ts';
import type { SqsQueueConfig } from '../config/agentConfigSchema.ts';
import type { Logger } from '../logger.ts';
import type { Spool } from '../spool/spool.ts';
import { Heartbeat } from './heartbeat.ts';
import { SqsForwarder, type SqsForwarderOptions } from './sqsForwarder.ts';

export interface CloudForwardingOptions {
  /** AWS clients for cloud mode; default: the SDK's default chain. */
  aws?: { sqs?: SQSClient; s3?: S3Client; cloudWatch?: CloudWatchClient };
  /** Heartbeat interval (tests shorten it). */
  heartbeatIntervalMs?: number;
  /** Forwarder tuning (tests shorten the backoff). */
  forwarder?: Pick<SqsForwarderOptions, 'initialBackoffMs' | 'maxBackoffMs' | 'concurrency'>;
  /** The spool's delivery history (the agent's part of a message's trace). */
  history?: SqsForwarderOptions['history'];
  /** The failure notice settings, when any notice can go out (each queue message names its notice's addresses). */
  notices?: SqsForwarderOptions['notices'];
}

/**
 * Cloud mode's spool consumer: the SQS forwarder and its heartbeat. A module of its own so that
 * the agent loads the AWS SDK only when the configuration asks for SQS (about 30 MB of memory a
 * local relay does not need).
 */
export function startCloudForwarding(
  sqsConfig: SqsQueueConfig,
  spool: Spool,
  queued: MessageEnvelope[],
  logger: Logger,
  options: CloudForwardingOptions,
): { forwarder: SqsForwarder; enqueue: (envelope: MessageEnvelope) => void; stop: (timeoutMs: number) => Promise<void> } {
  const region = sqsConfig.region ? { region: sqsConfig.region } : {};
  const sqs = options.aws?.sqs ?? new SQSClient(region);
  const s3 = options.aws?.s3 ?? new S3Client(region);
  const cloudWatch = options.aws?.cloudWatch ?? new CloudWatchClient(region);
  const forwarder = new SqsForwarder({
    spool,
    sqs,
    s3,
    queueUrl: sqsConfig.queueUrl,
    bucket: sqsConfig.bucket,
    prefix: sqsConfig.prefix,
    inlineMaxBytes: sqsConfig.inlineMaxBytes,
    logger,
    history: options.history,
    ...(options.notices ? { notices: options.notices } : {}),
    ...options.forwarder,
  });
  const heartbeat = new Heartbeat(cloudWatch, () => forwarder.depth, logger, options.heartbeatIntervalMs);
  forwarder.start(queued);
  heartbeat.start();
  return {
    forwarder,
    enqueue: (envelope) => forwarder.enqueue(envelope),
    stop: async (timeoutMs) => {
      heartbeat.stop();
      await forwarder.stop(timeoutMs);
    },
  };
}
