import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import type { IKey } from 'aws-cdk-lib/aws-kms';
import { Queue, QueueEncryption } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { QUEUE_RETENTION_DAYS } from '../../contract/cloudResources.ts';
// The largest message SQS takes; the agent puts bodies that do not fit in the body bucket.
import { SQS_MAX_MESSAGE_BYTES } from '../../contract/queueMessage.ts';

/** See MailQueueProps.maxReceiveCount. */
export const DEFAULT_MAX_RECEIVE_COUNT = 100;
/** The longest SQS keeps a message. */
export const MAX_RETENTION = Duration.days(QUEUE_RETENTION_DAYS);

export interface MailQueueProps {
  /**
   * How long a received message stays hidden from other consumers. Must be at least six times the
   * delivery function's timeout (checked by `DeliveryFunction`), so a batch that is still being
   * sent is never handed out twice.
   */
  readonly visibilityTimeout: Duration;
  /**
   * Receives after which SQS itself moves a message to the dead-letter queue, without a reason.
   * The function dead-letters permanent failures itself on the spot (with the reason), retries
   * transient ones on its schedule (1m, 5m, 15m, 1h, then every 4h) until the message is 2 days
   * old (about 17 receives), and holds needs-operator ones, retried every 4h, until
   * QUEUE_HOLD_LIMIT_MS (13 days: about 80 receives), then dead-letters them with the reason.
   * Every receive counts here, so this must stay above that, with room for the short re-tries of
   * a message another invocation holds; it is the backstop for what the function cannot handle at
   * all (a crash or timeout on every attempt, 30 minutes apart).
   * @default 100
   */
  readonly maxReceiveCount?: number;
  /**
   * Customer-managed key for both queues.
   * @default - SSE-SQS (SQS-owned keys): encrypted at rest, and the agent and the function need
   *   no KMS permissions
   */
  readonly encryptionKey?: IKey;
  /** @default RemovalPolicy.DESTROY (what is in flight is lost with the stack; mail still in the DLQ too) */
  readonly removalPolicy?: RemovalPolicy;
}

/**
 * The queue the office agent sends mail to, and the dead-letter queue failed mail ends in. Both
 * encrypted at rest, both refuse requests that are not over TLS, both keep messages for 14 days.
 */
export class MailQueue extends Construct {
  public readonly queue: Queue;
  public readonly deadLetterQueue: Queue;
  public readonly visibilityTimeout: Duration;
  public readonly maxReceiveCount: number;
  public readonly encryptionKey: IKey | undefined;

  constructor(scope: Construct, id: string, props: MailQueueProps) {
    super(scope, id);
    const maxReceiveCount = props.maxReceiveCount ?? DEFAULT_MAX_RECEIVE_COUNT;
    if (!Number.isInteger(maxReceiveCount) || maxReceiveCount < 1 || maxReceiveCount > 1000) {
      throw new RangeError(`MailQueue maxReceiveCount must be a whole number from 1 to 1000, got ${maxReceiveCount}`);
    }
    this.visibilityTimeout = props.visibilityTimeout;
    this.maxReceiveCount = maxReceiveCount;
    this.encryptionKey = props.encryptionKey;

    const encryption = props.encryptionKey
      ? { encryption: QueueEncryption.KMS, encryptionMasterKey: props.encryptionKey }
      : { encryption: QueueEncryption.SQS_MANAGED };
    const removalPolicy = props.removalPolicy ?? RemovalPolicy.DESTROY;

    this.deadLetterQueue = new Queue(this, 'DeadLetterQueue', {
      ...encryption,
      enforceSSL: true,
      maxMessageSizeBytes: SQS_MAX_MESSAGE_BYTES,
      retentionPeriod: MAX_RETENTION,
      removalPolicy,
    });

    this.queue = new Queue(this, 'Queue', {
      ...encryption,
      enforceSSL: true,
      maxMessageSizeBytes: SQS_MAX_MESSAGE_BYTES,
      retentionPeriod: MAX_RETENTION,
      visibilityTimeout: props.visibilityTimeout,
      deadLetterQueue: { queue: this.deadLetterQueue, maxReceiveCount },
      removalPolicy,
    });
  }
}
