import { GetQueueAttributesCommand, SQSClient } from '@aws-sdk/client-sqs';
import type { AgentConfig } from '../config/agentConfigSchema.ts';
import { ConfigError } from '../../config-toolkit/configError.ts';
import { listDeadLetters } from './listDeadLetters.ts';
import { moveDeadLettersOneByOne, MoveTaskUnavailableError, redriveDeadLetters } from './redrive.ts';

/** The queue settings the operator commands need; they run with operator credentials, not the agent's. */
function deadLetterSettings(config: Pick<AgentConfig, 'queue'>, command: string): { sqs: SQSClient; queueUrl: string; dlqUrl: string } {
  const sqsConfig = config.queue.sqs;
  if (!sqsConfig?.deadLetterQueueUrl) {
    throw new ConfigError([`queue.sqs.deadLetterQueueUrl: required by smarthost ${command} (the stack's DeadLetterQueueUrl output)`]);
  }
  return { sqs: new SQSClient(sqsConfig.region ? { region: sqsConfig.region } : {}), queueUrl: sqsConfig.queueUrl, dlqUrl: sqsConfig.deadLetterQueueUrl };
}

/** `smarthost failed`: what waits in the dead-letter queue and why. */
export async function printDeadLetters(config: AgentConfig, out: NodeJS.WritableStream): Promise<void> {
  const { sqs, dlqUrl } = deadLetterSettings(config, 'failed');
  const letters = await listDeadLetters({ sqs, dlqUrl });
  out.write(`dead letters: ${letters.length}\n`);
  for (const letter of letters) {
    out.write(
      `  ${letter.id ?? '(not a smarthost message)'}  ${letter.sentAt?.toISOString() ?? '-'}  ${letter.kind ?? 'moved by SQS'}  ${letter.reason ?? ''}${letter.reply ? `  reply="${letter.reply}"` : ''}\n`,
    );
  }
}

/**
 * `smarthost redrive`: moves the dead-letter queue back to the mail queue, with SQS's message
 * move task, or one message at a time where the endpoint has no move task.
 */
export async function redrive(config: Pick<AgentConfig, 'queue'>, out: NodeJS.WritableStream, client?: Pick<SQSClient, 'send'>): Promise<void> {
  const settings = deadLetterSettings(config, 'redrive');
  const { queueUrl, dlqUrl } = settings;
  const sqs = client ?? settings.sqs;
  const attributes = await sqs.send(new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['QueueArn'] }));
  const queueArn = attributes.Attributes?.QueueArn;
  if (!queueArn) {
    throw new Error(`SQS did not tell the ARN of ${queueUrl}`);
  }
  try {
    const { taskHandle } = await redriveDeadLetters({ sqs, dlqUrl, queueArn });
    out.write(`moving dead letters back to the queue (task ${taskHandle})\n`);
  } catch (error) {
    if (!(error instanceof MoveTaskUnavailableError)) throw error;
    out.write(`${error.message}\nmoving them one by one instead: each is deleted from the dead-letter queue once the queue has it\n`);
    const { moved } = await moveDeadLettersOneByOne({ sqs, dlqUrl, queueUrl });
    out.write(`moved ${moved} dead letters back to the queue\n`);
  }
}
