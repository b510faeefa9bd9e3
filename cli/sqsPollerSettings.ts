import { ConfigError } from '../config-toolkit/configError.ts';
import type { AgentConfig } from '../edge-agent/config/agentConfigSchema.ts';
import { targetsInclude } from '../edge-agent/config/noticesSchema.ts';
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
    // notices.admin is the worker's failureNoticeTo, with notify read as on the office box (none or
    // sender: the admin gets nothing); the sender's notice the agent asked for in the message.
    ...(config.notices.admin && targetsInclude(config.notices.notify, 'admin') ? { failureNoticeTo: config.notices.admin } : {}),
    ...(config.notices.heldAfter !== 'off' ? { delayedNoticeAfterMs: config.notices.heldAfter } : {}),
  };
}
