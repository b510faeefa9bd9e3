import { fileURLToPath } from 'node:url';
import { Duration, RemovalPolicy, Validations } from 'aws-cdk-lib';
import { Effect, PolicyDocument, PolicyStatement, Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import type { IKey } from 'aws-cdk-lib/aws-kms';
import { Architecture, EventSourceMapping, Runtime } from 'aws-cdk-lib/aws-lambda';
import { LogLevel, NodejsFunction, OutputFormat } from 'aws-cdk-lib/aws-lambda-nodejs';
import { LogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { DELIVERY_METRICS_NAMESPACE, FUNCTION_ENV } from '../../contract/cloudResources.ts';
import { bucketObjectsFinding } from '../nagFindings.ts';
import type { BodyBucket } from './BodyBucket.ts';
import type { DeliveryLedger } from './DeliveryLedger.ts';
import type { MailQueue } from './MailQueue.ts';
import type { UpstreamSecret } from './UpstreamSecret.ts';
import { FUNCTION_TIMEOUT_SECONDS, VISIBILITY_TIMEOUT_FACTOR } from '../../contract/cloudResources.ts';

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));


/**
 * ESM bundles have no `require`; some bundled CommonJS code (nodemailer, the AWS SDK when bundled)
 * calls it for Node built-ins. The banner gives the module one.
 */
const ESM_REQUIRE_BANNER =
  "import { createRequire as __smarthostCreateRequire } from 'node:module'; const require = __smarthostCreateRequire(import.meta.url);";

export interface DeliveryFunctionProps {
  readonly mailQueue: MailQueue;
  readonly bodyBucket: BodyBucket;
  readonly upstreamSecret: UpstreamSecret;
  readonly ledger: DeliveryLedger;
  /**
   * The admin address that gets the RFC 3464 failure notice about every dead-lettered message,
   * besides the addresses the agent named in the message (its sender, by its `notices` settings).
   * @default - only those the agent named
   */
  readonly failureNoticeTo?: string;
  /**
   * How long after its arrival a message held for the operator gets its "Delayed" notice (a
   * duration such as 4h, or off), at its first held attempt past it.
   * @default - DELAYED_NOTICE_AFTER (4h)
   */
  readonly delayedNoticeAfter?: string;
  /**
   * How long the function reuses a fetched secret before reading it again (a new value put in
   * Secrets Manager is picked up within this time).
   * @default Duration.minutes(5)
   */
  readonly secretTtl?: Duration;
  /**
   * One invocation's limit: a batch of up to `batchSize` messages of up to 35 MB each, over one
   * SMTP connection. The queue's visibility timeout must be at least 6 times this.
   * @default Duration.minutes(5)
   */
  readonly timeout?: Duration;
  /** @default 1024 (MB; also buys CPU for TLS and the body's SHA-256) */
  readonly memorySize?: number;
  /** @default 10 */
  readonly batchSize?: number;
  /**
   * Invocations running at once. Exchange Online allows 3 concurrent SMTP connections per mailbox;
   * 2 leaves one for anything else sending as that mailbox. 2 is also the least SQS accepts.
   * @default 2
   */
  readonly maxConcurrency?: number;
  /** @default RetentionDays.THREE_MONTHS */
  readonly logRetention?: RetentionDays;
  /** @default - `functions/lambda/handler.ts` in this repository, exporting `handler` */
  readonly entry?: string;
  /**
   * Bundle the AWS SDK instead of using the one in the Lambda runtime. Bundled, the function runs
   * the SDK versions of package-lock.json it was tested with, in an asset of about 1.2 MB instead
   * of 0.65 MB (the SDK and its smithy core are half of it). The runtime's SDK is the one AWS
   * keeps patched; the function uses only long-stable calls of S3, SQS, DynamoDB and Secrets
   * Manager (docs/benchmark.md, "Lambda asset").
   * @default false
   */
  readonly bundleAwsSdk?: boolean;
}

/**
 * The Lambda function that delivers what the agent queued: an SQS event source with partial batch
 * responses and at most `maxConcurrency` invocations, and a role allowed exactly what the handler
 * does (receive and delete from the queue, move failures to the dead-letter queue, read and delete
 * bodies under `incoming/`, read the upstream secret, keep its ledger, write its own logs).
 */
export class DeliveryFunction extends Construct {
  public readonly function: NodejsFunction;
  public readonly role: Role;
  public readonly logGroup: LogGroup;
  public readonly eventSourceMapping: EventSourceMapping;
  public readonly timeout: Duration;

  constructor(scope: Construct, id: string, props: DeliveryFunctionProps) {
    super(scope, id);
    const { mailQueue, bodyBucket, upstreamSecret, ledger } = props;
    this.timeout = props.timeout ?? Duration.seconds(FUNCTION_TIMEOUT_SECONDS);
    const minimumVisibility = this.timeout.toSeconds() * VISIBILITY_TIMEOUT_FACTOR;
    if (mailQueue.visibilityTimeout.toSeconds() < minimumVisibility) {
      throw new RangeError(
        `the queue's visibility timeout (${mailQueue.visibilityTimeout.toSeconds()} s) must be at least ${VISIBILITY_TIMEOUT_FACTOR} times ` +
          `the function timeout (${this.timeout.toSeconds()} s), that is ${minimumVisibility} s`,
      );
    }
    const secretTtl = props.secretTtl ?? Duration.minutes(5);

    this.logGroup = new LogGroup(this, 'Logs', {
      retention: props.logRetention ?? RetentionDays.THREE_MONTHS,
      removalPolicy: RemovalPolicy.DESTROY,
    });

    const keys = uniqueKeys([mailQueue.encryptionKey, bodyBucket.encryptionKey, upstreamSecret.encryptionKey]);
    const statements = [
      new PolicyStatement({
        sid: 'WriteOwnLogs',
        actions: ['logs:CreateLogStream', 'logs:PutLogEvents'],
        resources: [this.logGroup.logGroupArn],
      }),
      new PolicyStatement({
        sid: 'ConsumeMailQueue',
        actions: ['sqs:ReceiveMessage', 'sqs:DeleteMessage', 'sqs:ChangeMessageVisibility', 'sqs:GetQueueAttributes'],
        resources: [mailQueue.queue.queueArn],
      }),
      new PolicyStatement({
        sid: 'MoveFailuresToDeadLetterQueue',
        actions: ['sqs:SendMessage'],
        resources: [mailQueue.deadLetterQueue.queueArn],
      }),
      new PolicyStatement({
        sid: 'ReadAndDeleteBodies',
        actions: ['s3:GetObject', 's3:DeleteObject'],
        resources: [bodyBucket.bucket.arnForObjects(`${bodyBucket.prefix}*`)],
      }),
      new PolicyStatement({
        // Without it S3 answers 403 AccessDenied for a body that is gone (expired, deleted) instead
        // of 404 NoSuchKey, and the function would retry a message it should dead-letter at once.
        sid: 'TellMissingBodies',
        actions: ['s3:ListBucket'],
        resources: [bodyBucket.bucket.bucketArn],
      }),
      new PolicyStatement({
        sid: 'ReadUpstreamSecret',
        actions: ['secretsmanager:GetSecretValue'],
        resources: [upstreamSecret.secretArn],
      }),
      new PolicyStatement({
        sid: 'KeepDeliveryLedger',
        actions: ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:DeleteItem'],
        resources: [ledger.table.tableArn],
      }),
    ];
    if (keys.length > 0) {
      statements.push(
        new PolicyStatement({
          sid: 'UseDataKeys',
          effect: Effect.ALLOW,
          // Decrypt: queue messages, bodies, the secret; GenerateDataKey: messages sent to the DLQ.
          actions: ['kms:Decrypt', 'kms:GenerateDataKey'],
          resources: keys.map((key) => key.keyArn),
        }),
      );
    }

    this.role = new Role(this, 'Role', {
      assumedBy: new ServicePrincipal('lambda.amazonaws.com'),
      description: 'smarthost delivery function: consume the mail queue and deliver to Microsoft 365',
      // Inline, so the role carries its permissions when the event source mapping is created
      // (Lambda checks the SQS permissions at that moment).
      inlinePolicies: { Delivery: new PolicyDocument({ statements }) },
    });

    const maxConcurrency = props.maxConcurrency ?? 2;
    const environment: Record<string, string> = {
      [FUNCTION_ENV.queueUrl]: mailQueue.queue.queueUrl,
      [FUNCTION_ENV.secretArn]: upstreamSecret.secretArn,
      [FUNCTION_ENV.deadLetterQueueUrl]: mailQueue.deadLetterQueue.queueUrl,
      [FUNCTION_ENV.ledgerTable]: ledger.table.tableName,
      [FUNCTION_ENV.secretTtlSeconds]: String(secretTtl.toSeconds()),
      // Each instance opens its share of a mailbox's connections; the per-minute and per-day
      // limits are counted for all of them in the ledger table (mailbox-budget# items).
      [FUNCTION_ENV.instances]: String(maxConcurrency),
      POWERTOOLS_SERVICE_NAME: 'smarthost-delivery',
      POWERTOOLS_METRICS_NAMESPACE: DELIVERY_METRICS_NAMESPACE,
      NODE_OPTIONS: '--enable-source-maps',
    };
    if (props.failureNoticeTo) {
      environment[FUNCTION_ENV.failureNoticeTo] = props.failureNoticeTo;
    }
    if (props.delayedNoticeAfter) {
      environment[FUNCTION_ENV.delayedNoticeAfter] = props.delayedNoticeAfter;
    }

    this.function = new NodejsFunction(this, 'Function', {
      description: 'smarthost: delivers queued office mail to Microsoft 365',
      entry: props.entry ?? `${REPO_ROOT}functions/lambda/handler.ts`,
      handler: 'handler',
      projectRoot: REPO_ROOT,
      depsLockFilePath: `${REPO_ROOT}package-lock.json`,
      runtime: Runtime.NODEJS_24_X,
      architecture: Architecture.ARM_64,
      memorySize: props.memorySize ?? 1024,
      timeout: this.timeout,
      role: this.role,
      logGroup: this.logGroup,
      environment,
      bundling: {
        forceDockerBundling: false,
        format: OutputFormat.ESM,
        mainFields: ['module', 'main'],
        banner: ESM_REQUIRE_BANNER,
        target: 'node24',
        minify: true,
        sourceMap: true,
        sourcesContent: false,
        bundleAwsSDK: props.bundleAwsSdk ?? false,
        logLevel: LogLevel.WARNING,
      },
    });

    this.eventSourceMapping = new EventSourceMapping(this, 'QueueEventSource', {
      target: this.function,
      eventSourceArn: mailQueue.queue.queueArn,
      batchSize: props.batchSize ?? 10,
      reportBatchItemFailures: true,
      maxConcurrency,
    });

    Validations.of(this.role).acknowledge({
      id: bucketObjectsFinding(bodyBucket.bucket, `${bodyBucket.prefix}*`),
      reason:
        'Object-level wildcard under incoming/ only: the function reads and deletes the body of whichever message it is ' +
        'delivering, and the keys (incoming/<date>/<message id>.eml) are not known when the policy is written.',
    });
  }
}

function uniqueKeys(keys: readonly (IKey | undefined)[]): IKey[] {
  return [...new Set(keys.filter((key): key is IKey => key !== undefined))];
}
