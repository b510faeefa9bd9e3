import { CfnOutput, Duration, Stack, type StackProps } from 'aws-cdk-lib';
import { Key } from 'aws-cdk-lib/aws-kms';
import type { Construct } from 'constructs';
import { AgentAccess, type AgentTrust } from './constructs/AgentAccess.ts';
import { Alarms } from './constructs/Alarms.ts';
import { BodyBucket } from './constructs/BodyBucket.ts';
import { FUNCTION_TIMEOUT_SECONDS, VISIBILITY_TIMEOUT_FACTOR } from '../contract/cloudResources.ts';
import { DeliveryFunction } from './constructs/DeliveryFunction.ts';
import { DeliveryLedger } from './constructs/DeliveryLedger.ts';
import { MailQueue } from './constructs/MailQueue.ts';
import { UpstreamSecret } from './constructs/UpstreamSecret.ts';

/** One delivery function invocation may take this long (a batch of scans over one SMTP connection). */
export const FUNCTION_TIMEOUT = Duration.seconds(FUNCTION_TIMEOUT_SECONDS);

export interface SmarthostStackProps extends StackProps {
  /**
   * Subscribed by email to the alarm topic.
   * @default - no subscription
   */
  readonly alarmEmail?: string;
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
   * Encrypt the queues, the bucket and the secret with one customer-managed KMS key (about 1 USD
   * a month plus requests) instead of the services' own keys; the agent and the function are
   * then granted that key.
   * @default false
   */
  readonly customerManagedKey?: boolean;
  /** @default - any principal of this account allowed by its own policy (see AgentTrust) */
  readonly agentTrust?: AgentTrust;
  /** @default - `functions/lambda/handler.ts` (see DeliveryFunctionProps.entry) */
  readonly deliveryFunctionEntry?: string;
}

/**
 * The cloud side of smarthost: the queue the office agent sends to, the bucket for large bodies,
 * the function that delivers to Microsoft 365 with its secret and ledger, the agent's role, and
 * the alarms that say when mail is not getting through.
 */
export class SmarthostStack extends Stack {
  public readonly mailQueue: MailQueue;
  public readonly bodyBucket: BodyBucket;
  public readonly upstreamSecret: UpstreamSecret;
  public readonly ledger: DeliveryLedger;
  public readonly delivery: DeliveryFunction;
  public readonly agentAccess: AgentAccess;
  public readonly alarms: Alarms;
  public readonly dataKey: Key | undefined;

  constructor(scope: Construct, id: string, props: SmarthostStackProps = {}) {
    super(scope, id, {
      description: 'smarthost: relay from office devices to Microsoft 365 (queue, delivery function, alarms)',
      ...props,
    });

    this.dataKey = props.customerManagedKey
      ? new Key(this, 'DataKey', { description: `${this.stackName}: encrypts queued mail, bodies and the upstream secret`, enableKeyRotation: true })
      : undefined;

    this.mailQueue = new MailQueue(this, 'Mail', {
      visibilityTimeout: Duration.seconds(FUNCTION_TIMEOUT.toSeconds() * VISIBILITY_TIMEOUT_FACTOR),
      encryptionKey: this.dataKey,
    });
    this.bodyBucket = new BodyBucket(this, 'Bodies', { encryptionKey: this.dataKey });
    this.upstreamSecret = new UpstreamSecret(this, 'Upstream', { encryptionKey: this.dataKey });
    this.ledger = new DeliveryLedger(this, 'Ledger');
    this.delivery = new DeliveryFunction(this, 'Delivery', {
      mailQueue: this.mailQueue,
      bodyBucket: this.bodyBucket,
      upstreamSecret: this.upstreamSecret,
      ledger: this.ledger,
      timeout: FUNCTION_TIMEOUT,
      failureNoticeTo: props.failureNoticeTo,
      delayedNoticeAfter: props.delayedNoticeAfter,
      entry: props.deliveryFunctionEntry,
    });
    this.agentAccess = new AgentAccess(this, 'Agent', {
      mailQueue: this.mailQueue,
      bodyBucket: this.bodyBucket,
      trust: props.agentTrust,
    });
    this.alarms = new Alarms(this, 'Alarms', {
      mailQueue: this.mailQueue,
      deliveryFunction: this.delivery.function,
      alarmEmail: props.alarmEmail,
    });

    const output = (id: string, value: string, description: string): CfnOutput => new CfnOutput(this, id, { value, description });
    output('QueueUrl', this.mailQueue.queue.queueUrl, 'The queue the agent sends to (queue.sqs.queueUrl)');
    output('QueueArn', this.mailQueue.queue.queueArn, 'The queue redrive sends dead letters back to');
    output('DeadLetterQueueUrl', this.mailQueue.deadLetterQueue.queueUrl, 'Failed mail, with the reason in message attributes');
    output('DeadLetterQueueArn', this.mailQueue.deadLetterQueue.queueArn, 'Source of a redrive');
    output('BucketName', this.bodyBucket.bucket.bucketName, 'Bodies too large for SQS (queue.sqs.bucket)');
    output('SecretArn', this.upstreamSecret.secretArn, 'Put the upstream JSON here (aws secretsmanager put-secret-value)');
    output('LedgerTableName', this.ledger.table.tableName, 'Delivery records (queue.sqs.ledgerTable for smarthost worker)');
    output('AgentRoleArn', this.agentAccess.role.roleArn, 'The role the office agent assumes');
    output('AlarmTopicArn', this.alarms.topic.topicArn, 'Alarms are published here');
    output('DashboardName', this.alarms.dashboard.dashboardName, 'CloudWatch dashboard');
    output('DeliveryLogGroupName', this.delivery.logGroup.logGroupName, 'Delivery function log (aws logs tail <name> --follow)');
    if (this.agentAccess.rolesAnywhereProfileArn && this.agentAccess.rolesAnywhereTrustAnchorArn) {
      output('RolesAnywhereProfileArn', this.agentAccess.rolesAnywhereProfileArn, 'aws_signing_helper --profile-arn');
      output('RolesAnywhereTrustAnchorArn', this.agentAccess.rolesAnywhereTrustAnchorArn, 'aws_signing_helper --trust-anchor-arn');
    }
    output('AgentConfigSnippet', agentConfigSnippet(this), 'Paste into smarthost.yaml on the office box, replacing its queue block');
  }
}

/** The agent's `queue:` block as one line of YAML (flow style), ready to paste. */
function agentConfigSnippet(stack: SmarthostStack): string {
  return (
    `queue: { kind: sqs, sqs: { queueUrl: "${stack.mailQueue.queue.queueUrl}", region: ${stack.region}, ` +
    `bucket: ${stack.bodyBucket.bucket.bucketName}, prefix: ${stack.bodyBucket.prefix} } }`
  );
}
