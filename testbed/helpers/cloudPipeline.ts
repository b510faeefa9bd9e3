import type { PutMetricDataCommand } from '@aws-sdk/client-cloudwatch';
import { agentConfigSchema, type AgentConfigInput } from '../../edge-agent/config/agentConfigSchema.ts';
import { createLogger } from '../../edge-agent/logger.ts';
import { sqsPollerSettings } from '../../cli/sqsPollerSettings.ts';
import { startSqsPoller, type RunningSqsPoller } from '../../functions/sqs-poller/startSqsPoller.ts';
import type { LocalDynamo } from '../aws/localDynamo.ts';
import type { LocalS3 } from '../aws/localS3.ts';
import type { LocalSqs } from '../aws/localSqs.ts';
import { LogCapture, startTestAgent, type TestAgent } from './agentHarness.ts';

export interface CloudPipeline {
  agent: TestAgent;
  worker: RunningSqsPoller;
  workerLogs: LogCapture;
  /** Stops the worker, then the agent. */
  stop(): Promise<void>;
}

/**
 * Cloud mode on the loopback stand-ins: an agent handing its spool to SQS (S3 for large bodies)
 * and `smarthost worker` delivering from the queue to `upstream`.
 */
export async function startCloudPipeline(options: {
  aws: { sqs: LocalSqs; s3: LocalS3; dynamo: LocalDynamo };
  /** queue.sqs of both: queueUrl, bucket, region, and whatever else the test sets. */
  sqsBlock: Record<string, unknown>;
  /** The worker's upstream block (or `{ secretArn }`). */
  upstream: unknown;
  maxBackoffMs: number;
  /** Receives the agent's heartbeats; default: dropped. */
  onHeartbeat?: (command: PutMetricDataCommand) => void;
  /** More of the agent's configuration (clients, notices). */
  agentConfig?: AgentConfigInput;
  /** More of the worker's configuration (notices). */
  workerConfig?: AgentConfigInput;
}): Promise<CloudPipeline> {
  const { sqs, s3, dynamo } = options.aws;
  const agent = await startTestAgent(
    { ...options.agentConfig, queue: { kind: 'sqs', sqs: options.sqsBlock } } as AgentConfigInput,
    {
      aws: { sqs: sqs.client, s3: s3.client, cloudWatch: { send: async (command: PutMetricDataCommand) => void options.onHeartbeat?.(command) } as never },
      forwarder: { initialBackoffMs: 50, maxBackoffMs: options.maxBackoffMs },
    },
  );
  const workerConfig = agentConfigSchema.parse({
    ...options.workerConfig,
    // local-aws-sqs holds a long poll for its full wait when fewer than 10 messages are there.
    queue: { kind: 'sqs', sqs: { ...options.sqsBlock, deadLetterQueueUrl: sqs.dlqUrl, ledgerTable: dynamo.tableName, worker: { pollWait: '1s' } } },
    upstream: options.upstream,
    retry: { schedule: ['1s'], maxAge: '1h' },
  });
  const workerLogs = new LogCapture();
  const worker = await startSqsPoller(sqsPollerSettings(workerConfig), createLogger('debug', workerLogs), { sqs: sqs.client, s3: s3.client, dynamo: dynamo.client });
  return {
    agent,
    worker,
    workerLogs,
    async stop() {
      await worker.stop();
      await agent.dispose();
    },
  };
}
