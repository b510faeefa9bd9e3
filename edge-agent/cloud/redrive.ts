import {
  DeleteMessageCommand,
  GetQueueAttributesCommand,
  ListMessageMoveTasksCommand,
  ReceiveMessageCommand,
  SendMessageCommand,
  StartMessageMoveTaskCommand,
  type MessageAttributeValue,
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
    if (moveTaskUnavailable(error)) {
      throw new MoveTaskUnavailableError(dlqArn, queueArn, unavailableDetail(error), { cause: error });
    }
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

/**
 * The endpoint does not offer SQS's message move task (an SQS-compatible service or proxy that
 * lacks StartMessageMoveTask answers with something that is no SQS reply): the dead letters can
 * still be moved one by one (moveDeadLettersOneByOne) or from the SQS console.
 */
export class MoveTaskUnavailableError extends Error {
  constructor(
    readonly dlqArn: string,
    readonly queueArn: string,
    detail: string,
    options?: { cause?: unknown },
  ) {
    super(
      `SQS's message move task (StartMessageMoveTask) is not available at this endpoint (${detail}); ` +
        `move the messages from ${dlqArn} to ${queueArn} another way: one by one (receive, send, delete), or in the SQS console ` +
        `(the dead-letter queue's "Start DLQ redrive")`,
      options,
    );
    this.name = 'MoveTaskUnavailableError';
  }
}

/**
 * The SDK's error for an answer that is no SQS reply (no modelled error in it): a deserialization
 * failure, or an unknown-operation error from an SQS-compatible service. A refusal SQS itself
 * gives (a task already running, access denied) is not this.
 */
function moveTaskUnavailable(error: unknown): boolean {
  if (typeof error !== 'object' || error === null) return false;
  const { name, message, $metadata } = error as { name?: unknown; message?: unknown; $metadata?: { httpStatusCode?: number } };
  if (typeof name === 'string' && /^(UnknownOperation(Exception)?|InvalidAction|NotImplemented|UnsupportedOperationException)$/.test(name)) return true;
  if (typeof message === 'string' && /Deserialization error/i.test(message)) return true;
  const status = $metadata?.httpStatusCode;
  return status === 404 || status === 405 || status === 501;
}

function unavailableDetail(error: unknown): string {
  const { name, $metadata } = error as { name?: unknown; $metadata?: { httpStatusCode?: number } };
  const status = $metadata?.httpStatusCode;
  return [status === undefined ? undefined : `HTTP ${status}`, typeof name === 'string' && !['Error', 'SyntaxError'].includes(name) ? name : undefined].filter(Boolean).join(', ') || 'no SQS reply';
}

export interface OneByOneOptions {
  sqs: Pick<SQSClient, 'send'>;
  dlqUrl: string;
  queueUrl: string;
  /**
   * Seconds a received dead letter stays hidden while it is sent on; one that could not be sent
   * comes back to the dead-letter queue after it.
   * @default 60
   */
  visibilitySeconds?: number;
}

/** SQS returns at most this many messages per ReceiveMessage. */
const RECEIVE_BATCH = 10;

/**
 * Moves the dead letters back without a move task: receive a batch from the dead-letter queue,
 * send each message (body and attributes) to the mail queue, and delete it from the dead-letter
 * queue only once SQS confirmed that send. Stops when a receive finds nothing. A crash between
 * send and delete leaves a copy in both queues; delivery is idempotent on the agent's message id
 * (the ledger), so the copy is not delivered twice. Message ids and SentTimestamp are new.
 * @returns how many were moved
 * @throws Error naming how many were moved already when a send or delete fails
 */
export async function moveDeadLettersOneByOne(options: OneByOneOptions): Promise<{ moved: number }> {
  const { sqs, dlqUrl, queueUrl } = options;
  let moved = 0;
  for (;;) {
    const received = await sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: dlqUrl,
        MaxNumberOfMessages: RECEIVE_BATCH,
        WaitTimeSeconds: 0,
        VisibilityTimeout: options.visibilitySeconds ?? 60,
        MessageAttributeNames: ['All'],
      }),
    );
    const messages = received.Messages ?? [];
    if (messages.length === 0) return { moved };
    for (const message of messages) {
      try {
        await sqs.send(
          new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: message.Body ?? '', MessageAttributes: copyAttributes(message.MessageAttributes) }),
        );
        await sqs.send(new DeleteMessageCommand({ QueueUrl: dlqUrl, ReceiptHandle: message.ReceiptHandle }));
      } catch (error) {
        throw new Error(`moved ${moved} dead letters from ${dlqUrl} to ${queueUrl}, then: ${(error as Error).message}`, { cause: error });
      }
      moved += 1;
    }
  }
}

function copyAttributes(attributes: Record<string, MessageAttributeValue> | undefined): Record<string, MessageAttributeValue> | undefined {
  if (!attributes) return undefined;
  const copy: Record<string, MessageAttributeValue> = {};
  for (const [name, value] of Object.entries(attributes)) {
    copy[name] = { DataType: value.DataType, ...(value.StringValue !== undefined ? { StringValue: value.StringValue } : {}), ...(value.BinaryValue !== undefined ? { BinaryValue: value.BinaryValue } : {}) };
  }
  return copy;
}
