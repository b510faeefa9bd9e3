import {
  ChangeMessageVisibilityBatchCommand,
  GetQueueAttributesCommand,
  ListMessageMoveTasksCommand,
  ReceiveMessageCommand,
  StartMessageMoveTaskCommand,
  type ChangeMessageVisibilityBatchCommandOutput,
  type GetQueueAttributesCommandOutput,
  type ListMessageMoveTasksCommandOutput,
  type ListMessageMoveTasksResultEntry,
  type Message,
  type ReceiveMessageCommandOutput,
  type SQSClient,
  type StartMessageMoveTaskCommandOutput,
} from '@aws-sdk/client-sqs';

export interface FakeMessage {
  id: string;
  body: string;
  /** String message attributes, by name. */
  attributes?: Record<string, string>;
  sentAt: number;
}

type Command =
  | ReceiveMessageCommand
  | ChangeMessageVisibilityBatchCommand
  | GetQueueAttributesCommand
  | StartMessageMoveTaskCommand
  | ListMessageMoveTasksCommand;

const metadata = { $metadata: {} };

/**
 * A hand-written stand-in for the SQS client: one queue's messages in memory, the commands the
 * dead-letter tools use, and every call recorded. No network.
 */
export class FakeSqs {
  readonly calls: Command[] = [];
  /** Receipt handles that are currently hidden (received with a visibility timeout > 0). */
  private readonly hidden = new Set<string>();
  private receipts = 0;
  /** false: ignore VisibilityTimeout, so the same messages come back on every receive. */
  hideOnReceive = true;
  startError: Error | undefined;
  startAnswer: Partial<StartMessageMoveTaskCommandOutput> = { TaskHandle: 'task-handle-1' };
  queueArn: string | undefined;
  tasks: ListMessageMoveTasksResultEntry[] = [];

  constructor(readonly messages: FakeMessage[] = []) {}

  /** The client as the code under test types it. */
  get client(): Pick<SQSClient, 'send'> {
    return this as unknown as Pick<SQSClient, 'send'>;
  }

  callsOf<T extends Command>(type: new (...args: never[]) => T): T[] {
    return this.calls.filter((call): call is T => call instanceof type);
  }

  async send(command: Command): Promise<unknown> {
    this.calls.push(command);
    if (command instanceof ReceiveMessageCommand) return this.receive(command);
    if (command instanceof ChangeMessageVisibilityBatchCommand) return this.changeVisibility(command);
    if (command instanceof GetQueueAttributesCommand) {
      const answer: GetQueueAttributesCommandOutput = { ...metadata, Attributes: this.queueArn ? { QueueArn: this.queueArn } : {} };
      return answer;
    }
    if (command instanceof StartMessageMoveTaskCommand) {
      if (this.startError) throw this.startError;
      return { ...metadata, ...this.startAnswer } satisfies StartMessageMoveTaskCommandOutput;
    }
    if (command instanceof ListMessageMoveTasksCommand) {
      return { ...metadata, Results: this.tasks } satisfies ListMessageMoveTasksCommandOutput;
    }
    throw new Error(`FakeSqs does not handle ${(command as object).constructor.name}`);
  }

  private receive(command: ReceiveMessageCommand): ReceiveMessageCommandOutput {
    const wanted = command.input.MaxNumberOfMessages ?? 1;
    const visible = this.messages.filter((message) => ![...this.hidden].some((handle) => handle.startsWith(`${message.id}#`)));
    const picked = visible.slice(0, wanted);
    const messages: Message[] = picked.map((message) => {
      this.receipts += 1;
      const receiptHandle = `${message.id}#${this.receipts}`;
      if (this.hideOnReceive && (command.input.VisibilityTimeout ?? 30) > 0) this.hidden.add(receiptHandle);
      const requested = new Set(command.input.MessageAttributeNames ?? []);
      const attributes = Object.entries(message.attributes ?? {}).filter(([name]) => requested.has(name) || requested.has('All'));
      return {
        MessageId: message.id,
        ReceiptHandle: receiptHandle,
        Body: message.body,
        Attributes: { SentTimestamp: String(message.sentAt) },
        ...(attributes.length > 0
          ? { MessageAttributes: Object.fromEntries(attributes.map(([name, value]) => [name, { DataType: 'String', StringValue: value }])) }
          : {}),
      };
    });
    return { ...metadata, ...(messages.length > 0 ? { Messages: messages } : {}) };
  }

  private changeVisibility(command: ChangeMessageVisibilityBatchCommand): ChangeMessageVisibilityBatchCommandOutput {
    const entries = command.input.Entries ?? [];
    for (const entry of entries) {
      if (entry.ReceiptHandle && entry.VisibilityTimeout === 0) this.hidden.delete(entry.ReceiptHandle);
    }
    return { ...metadata, Successful: entries.map((entry) => ({ Id: entry.Id })), Failed: [] };
  }

  /** Messages nobody holds right now. */
  visibleCount(): number {
    return this.messages.length - this.hidden.size;
  }
}
