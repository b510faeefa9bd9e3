/**
 * Names the agent, the delivery function and the CDK app must agree on, defined once.
 */

/** Environment variables of the delivery function (set by the CDK app). */
export const FUNCTION_ENV = {
  /** URL of the queue the function consumes (to delay retries with ChangeMessageVisibility). */
  queueUrl: 'SMARTHOST_QUEUE_URL',
  /** ARN of the Secrets Manager secret holding the `upstream` JSON. */
  secretArn: 'SMARTHOST_SECRET_ARN',
  /** URL of the dead-letter queue failures are moved to (permanent; needs-operator past QUEUE_HOLD_LIMIT_MS). */
  deadLetterQueueUrl: 'SMARTHOST_DLQ_URL',
  /** DynamoDB table of delivery records (idempotency and per-recipient progress). */
  ledgerTable: 'SMARTHOST_LEDGER_TABLE',
  /** Optional: address that gets a short non-delivery notice for each failed message. */
  failureNoticeTo: 'SMARTHOST_FAILURE_NOTICE_TO',
  /**
   * Optional: how long after its arrival a message held for the operator gets its "Delayed"
   * notice (a duration such as 4h, or off; default DELAYED_NOTICE_AFTER).
   */
  delayedNoticeAfter: 'SMARTHOST_DELAYED_NOTICE_AFTER',
  /** Seconds a fetched secret is reused before it is read again (rotation pick-up). */
  secretTtlSeconds: 'SMARTHOST_SECRET_TTL_SECONDS',
  /**
   * How many instances may run at once (the event source's MaximumConcurrency): each opens its
   * share of a mailbox's connections (and counts its share of the per-recipient limit); the
   * per-minute and per-day limits are counted for all of them in the ledger table.
   */
  instances: 'SMARTHOST_INSTANCES',
} as const;

/** How long SQS keeps a message, in days (the queue and its dead-letter queue; SQS's longest). */
export const QUEUE_RETENTION_DAYS = 14;

/**
 * How long the cloud holds a message that needs the operator before it goes to the dead-letter
 * queue with its reason: the queue would drop it silently at QUEUE_RETENTION_DAYS. The day of
 * margin covers the longest wait between two receives (12 h of visibility) and a late receive.
 * The age is counted from the agent's receivedAt, which is never after the queue's own send time.
 */
export const QUEUE_HOLD_LIMIT_MS = (QUEUE_RETENTION_DAYS - 1) * 24 * 3600 * 1000;

/**
 * One delivery function invocation's limit (the CDK app sets the function's timeout to it): a batch
 * of up to 10 messages of up to 35 MB each over one SMTP connection.
 */
export const FUNCTION_TIMEOUT_SECONDS = 300;

/** The queue's visibility timeout is at least this many times the function timeout (AWS guidance). */
export const VISIBILITY_TIMEOUT_FACTOR = 6;

/**
 * How far a claim reaches past the end of the work that holds it: the Lambda's ledger lease and
 * visibility reach this far past the invocation's deadline, so a claim never lapses while the
 * function may still run, and a timed-out invocation's messages come back soon after.
 */
export const CLAIM_MARGIN_MS = 60_000;

/** The Lambda's ledger lease: the function timeout plus the margin. */
export const FUNCTION_LEASE_MS = FUNCTION_TIMEOUT_SECONDS * 1000 + CLAIM_MARGIN_MS;

/**
 * While a record is delivered, its visibility and ledger lease are extended this many times per
 * window (every third of the shorter of the two, like bbc/sqs-consumer's heartbeatInterval below
 * its visibilityTimeout): two beats may fail or run late before the claim lapses.
 */
export const HEARTBEATS_PER_WINDOW = 3;

/** SQS's longest visibility timeout, in seconds. */
export const MAX_VISIBILITY_SECONDS = 12 * 3600;

/** S3 key prefix under which the agent puts bodies too large for an SQS message. */
export const INCOMING_PREFIX = 'incoming/';

/** CloudWatch namespace of the delivery metrics (Powertools Metrics, EMF). */
export const DELIVERY_METRICS_NAMESPACE = 'Smarthost';
/** Names of the delivery metrics; DeliveryFailed has a `FailureClass` dimension. */
export const DELIVERY_METRICS = {
  delivered: 'Delivered',
  failed: 'DeliveryFailed',
  retried: 'DeliveryRetried',
  throttled: 'Throttled',
  latency: 'DeliveryLatency',
  bytes: 'BytesDelivered',
  /** A message held for the operator (needs-operator failure, retried on the slow schedule). */
  heldForOperator: 'HeldForOperator',
  /**
   * A message put back without an attempt because no mailbox it may use had room (its recipients
   * per 24 hours, messages per minute, or a pause after throttling): mail waiting on Exchange's
   * limits, not failing.
   */
  deferred: 'DeliveryDeferred',
  /**
   * Days until the upstream credential stops working: the certificate's expiry, or (a token that
   * could not be renewed) the held token's, 0 when none is held. Emitted once per invocation.
   */
  credentialExpiresInDays: 'CredentialExpiresInDays',
} as const;
export const FAILURE_CLASS_DIMENSION = 'FailureClass';
export const SERVICE_DIMENSION = 'service';

/**
 * CloudWatch namespace the office agent publishes its heartbeat in (PutMetricData), without
 * dimensions: one office box per deployment, and an alarm on a fixed metric can treat missing
 * data as breaching.
 */
export const AGENT_METRICS_NAMESPACE = 'Smarthost/Agent';
export const AGENT_METRICS = {
  /** 1 every minute while the agent runs. */
  heartbeat: 'Heartbeat',
  /** Messages in the agent's spool not yet handed to SQS. */
  spoolDepth: 'SpoolDepth',
} as const;

/** DynamoDB delivery ledger: partition key and TTL attribute. */
export const LEDGER_KEY = 'id';
export const LEDGER_TTL_ATTRIBUTE = 'expiresAt';

/**
 * Key prefix of the mailbox budget items in the ledger table (one per mailbox: its recipients per
 * 24 hours and messages per minute, shared by every function instance). Message ids never
 * contain '#', so the two kinds of item cannot meet.
 */
export const MAILBOX_BUDGET_KEY_PREFIX = 'mailbox-budget#';

/** SQS message attributes set when the function moves a message to the dead-letter queue. */
export const DLQ_ATTRIBUTES = {
  reason: 'SmarthostFailureReason',
  reply: 'SmarthostFailureReply',
  kind: 'SmarthostFailureKind',
} as const;
