import { ConfigError } from '../config-toolkit/configError.ts';
import type { AgentConfig } from '../edge-agent/config/agentConfigSchema.ts';
import type { SqsPollerSettings } from '../functions/sqs-poller/startSqsPoller.ts';

/** The parts of the agent's configuration `smarthost worker` needs; every missing one is named. */
export function sqsPollerSettings(config: AgentConfig): SqsPollerSettings {
  const sqs = config.queue.sqs;
  const problems: string[] = [];
  if (!sqs) problems.push('queue.sqs: required by smarthost worker (queueUrl, deadLetterQueueUrl, ledgerTable)');
  if (sqs && !sqs.deadLetterQueueUrl) problems.push('queue.sqs.deadLetterQueueUrl: required by smarthost worker');
  if (sqs && !sqs.ledgerTable) problems.push('queue.sqs.ledgerTable: required by smarthost worker');
  if (!config.upstream) problems.push('upstream: required by smarthost worker (the block, or secretArn)');
  if (!sqs?.deadLetterQueueUrl || !sqs.ledgerTable || !config.upstream) {
    throw new ConfigError(problems);
  }
  return {
    queueUrl: sqs.queueUrl,
    deadLetterQueueUrl: sqs.deadLetterQueueUrl,
    ledgerTable: sqs.ledgerTable,
    region: sqs.region,
    upstream: config.upstream,
    policy: { scheduleMs: config.retry.schedule, maxAgeMs: config.retry.maxAge },
    timings: sqs.worker,
  };
}
