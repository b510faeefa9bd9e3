import {
  GetQueueAttributesCommand,
  ListMessageMoveTasksCommand,
  StartMessageMoveTaskCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs';

/** SQS's ceiling for MaxNumberOfMessagesPerSecond of a message move task. */
export const MAX_REDRIVE_RATE = 500;

export interface RedriveOptions {
  sqs: Pick<SQSClient, 'send'>;
  /** The dead-letter queue's ARN (the stack's DeadLetterQueueArn output). Give this or `dlqUrl`. */
  dlqArn?: string;
  /** The dead-letter queue's URL; its ARN is then looked up (needs sqs:GetQueueAttributes). */
  dlqUrl?: string;
  /** Where the messages go: the mail queue's ARN (the stack's QueueArn output). */
  queueArn: string;
  /**
   * Messages moved per second, at most 500.
   * @default - SQS picks the rate
   */
  maxPerSecond?: number;
}

/**
 * Moves every message in the dead-letter queue back to the mail queue with an SQS message move
 * task, once the operator fixed what made delivery fail. SQS moves them in the background (the
 * messages keep their bodies, so the function delivers them again); the handle names the task
 * for `listRedriveTasks` and for cancelling it. SQS runs one task per queue at a time: starting a
 * second while one runs fails with SQS's error, wrapped with both queues named.
 */
export async function redriveDeadLetters(options: RedriveOptions): Promise<{ taskHandle: string }> {
  const { sqs, queueArn, maxPerSecond } = options;
  if (maxPerSecond !== undefined && (!Number.isInteger(maxPerSecond) || maxPerSecond < 1 || maxPerSecond > MAX_REDRIVE_RATE)) {
    throw new RangeError(`maxPerSecond must be a whole number from 1 to ${MAX_REDRIVE_RATE}, got ${String(maxPerSecond)}`);
  }
  const dlqArn = await resolveDeadLetterQueueArn(options);
  let taskHandle: string | undefined;
  try {
    const started = await sqs.send(
      new StartMessageMoveTaskCommand({ SourceArn: dlqArn, DestinationArn: queueArn, MaxNumberOfMessagesPerSecond: maxPerSecond }),
    );
    taskHandle = started.TaskHandle;
  } catch (error) {
    throw new Error(`could not start moving messages from ${dlqArn} to ${queueArn}: ${(error as Error).message}`, { cause: error });
  }
  if (!taskHandle) {
    throw new Error(`SQS started no message move task from ${dlqArn} to ${queueArn} (no task handle in its answer)`);
  }
  return { taskHandle };
}

export interface RedriveTask {
  /** Only present while the task runs (it is what cancels it). */
  taskHandle: string | undefined;
  /** RUNNING, COMPLETED, CANCELLING, CANCELLED or FAILED. */
  status: string;
  moved: number;
  /** How many were in the dead-letter queue when the task started. */
  toMove: number | undefined;
  startedAt: Date | undefined;
  failureReason: string | undefined;
}

/** The recent message move tasks out of the dead-letter queue, newest first (SQS keeps the last 10). */
export async function listRedriveTasks(options: Pick<RedriveOptions, 'sqs' | 'dlqArn' | 'dlqUrl'>): Promise<RedriveTask[]> {
  const dlqArn = await resolveDeadLetterQueueArn(options);
  const listed = await options.sqs.send(new ListMessageMoveTasksCommand({ SourceArn: dlqArn, MaxResults: 10 }));
  return (listed.Results ?? []).map((task) => ({
    taskHandle: task.TaskHandle,
    status: task.Status ?? 'UNKNOWN',
    moved: task.ApproximateNumberOfMessagesMoved ?? 0,
    toMove: task.ApproximateNumberOfMessagesToMove,
    startedAt: task.StartedTimestamp === undefined ? undefined : new Date(task.StartedTimestamp),
    failureReason: task.FailureReason,
  }));
}

async function resolveDeadLetterQueueArn(options: Pick<RedriveOptions, 'sqs' | 'dlqArn' | 'dlqUrl'>): Promise<string> {
  if (options.dlqArn) return options.dlqArn;
  if (!options.dlqUrl) {
    throw new TypeError('give the dead-letter queue as dlqArn or dlqUrl');
  }
  const attributes = await options.sqs.send(new GetQueueAttributesCommand({ QueueUrl: options.dlqUrl, AttributeNames: ['QueueArn'] }));
  const arn = attributes.Attributes?.QueueArn;
  if (!arn) {
    throw new Error(`SQS gave no QueueArn for ${options.dlqUrl}`);
  }
  return arn;
}
