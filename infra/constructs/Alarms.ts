import { Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import {
  Alarm,
  AlarmStatusWidget,
  ComparisonOperator,
  Dashboard,
  GraphWidget,
  MathExpression,
  Metric,
  Stats,
  TextWidget,
  TreatMissingData,
  type IMetric,
} from 'aws-cdk-lib/aws-cloudwatch';
import { SnsAction } from 'aws-cdk-lib/aws-cloudwatch-actions';
import { PolicyStatement, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { Key } from 'aws-cdk-lib/aws-kms';
import type { IFunction } from 'aws-cdk-lib/aws-lambda';
import { Topic } from 'aws-cdk-lib/aws-sns';
import { EmailSubscription } from 'aws-cdk-lib/aws-sns-subscriptions';
import { Construct } from 'constructs';
import {
  AGENT_METRICS,
  AGENT_METRICS_NAMESPACE,
  DELIVERY_METRICS,
  DELIVERY_METRICS_NAMESPACE,
  FAILURE_CLASS_DIMENSION,
  SERVICE_DIMENSION,
} from '../../contract/cloudResources.ts';
import type { MailQueue } from './MailQueue.ts';

/**
 * A Metrics Insights query over a delivery metric as Powertools publishes it: with the `service`
 * dimension only, whatever the service is called. DeliveryFailed is also published a second time
 * with a `FailureClass` dimension; SCHEMA(...) leaves those out, so nothing is counted twice.
 */
export function deliveryMetricQuery(statistic: 'SUM' | 'AVG' | 'MAX' | 'MIN', metricName: string): string {
  return `SELECT ${statistic}("${metricName}") FROM SCHEMA("${DELIVERY_METRICS_NAMESPACE}", ${SERVICE_DIMENSION})`;
}

/** Failed deliveries per failure class, one line each (dashboard only). */
export function failuresByClassQuery(): string {
  return (
    `SELECT SUM("${DELIVERY_METRICS.failed}") FROM SCHEMA("${DELIVERY_METRICS_NAMESPACE}", ${FAILURE_CLASS_DIMENSION}, ${SERVICE_DIMENSION}) ` +
    `GROUP BY ${FAILURE_CLASS_DIMENSION}`
  );
}

export interface AlarmsProps {
  readonly mailQueue: MailQueue;
  readonly deliveryFunction: IFunction;
  /**
   * Address subscribed to the alarm topic (AWS sends it a confirmation mail first).
   * @default - no subscription; subscribe to the topic yourself
   */
  readonly alarmEmail?: string;
  /**
   * The oldest message in the queue may be this old before the alarm goes off.
   * @default Duration.minutes(15)
   */
  readonly maxMessageAge?: Duration;
  /**
   * No agent heartbeat for this long (whole minutes) raises the alarm.
   * @default Duration.minutes(5)
   */
  readonly heartbeatMissingFor?: Duration;
  /**
   * The upstream credential (certificate, or a token that cannot be renewed) stops working within
   * this (whole days) before the alarm goes off; the office box's `alerts.thresholds.certificateExpiry` default.
   * @default Duration.days(30)
   */
  readonly credentialExpiryWarning?: Duration;
}

/**
 * What tells the office that mail is not getting through: alarms on failed and stuck mail, on the
 * function failing, and on the office agent going silent, all sent to one encrypted SNS topic
 * (with an email subscription when an address is given); and a dashboard of the same signals.
 */
export class Alarms extends Construct {
  public readonly topic: Topic;
  public readonly topicKey: Key;
  public readonly deadLetterAlarm: Alarm;
  public readonly deliveryFailedAlarm: Alarm;
  /** A message is held for the operator (credentials, a SendAs grant): retried slowly until fixed. */
  public readonly heldForOperatorAlarm: Alarm;
  /** The upstream credential expires soon, or a token could not be renewed (CredentialExpiresInDays). */
  public readonly credentialExpiryAlarm: Alarm;
  public readonly oldestMessageAlarm: Alarm;
  public readonly functionErrorsAlarm: Alarm;
  public readonly functionThrottlesAlarm: Alarm;
  public readonly heartbeatAlarm: Alarm;
  public readonly dashboard: Dashboard;

  constructor(scope: Construct, id: string, props: AlarmsProps) {
    super(scope, id);
    const { mailQueue, deliveryFunction } = props;
    const { stackName, region, account, partition } = Stack.of(this);
    const maxMessageAge = props.maxMessageAge ?? Duration.minutes(15);
    const heartbeatMinutes = (props.heartbeatMissingFor ?? Duration.minutes(5)).toMinutes();

    // CloudWatch can only publish to an encrypted topic through a customer-managed key whose
    // policy lets it; the AWS-managed aws/sns key does not.
    this.topicKey = new Key(this, 'TopicKey', {
      description: `${stackName}: encrypts the smarthost alarm topic`,
      enableKeyRotation: true,
      removalPolicy: RemovalPolicy.DESTROY,
      pendingWindow: Duration.days(7),
    });
    this.topicKey.addToResourcePolicy(
      new PolicyStatement({
        sid: 'CloudWatchAlarmsPublish',
        principals: [new ServicePrincipal('cloudwatch.amazonaws.com')],
        actions: ['kms:Decrypt', 'kms:GenerateDataKey'],
        resources: ['*'],
      }),
    );
    this.topic = new Topic(this, 'Topic', {
      displayName: 'smarthost alarms',
      masterKey: this.topicKey,
      enforceSSL: true,
    });
    // The SSL-only statement makes the topic policy explicit, and with an explicit policy
    // CloudWatch must be allowed by name (the default policy's owner-account statement is gone).
    this.topic.addToResourcePolicy(
      new PolicyStatement({
        sid: 'CloudWatchAlarmsPublish',
        principals: [new ServicePrincipal('cloudwatch.amazonaws.com')],
        actions: ['sns:Publish'],
        resources: [this.topic.topicArn],
        conditions: { ArnLike: { 'aws:SourceArn': `arn:${partition}:cloudwatch:${region}:${account}:alarm:*` } },
      }),
    );
    if (props.alarmEmail) {
      this.topic.addSubscription(new EmailSubscription(props.alarmEmail));
    }

    const notify = (alarm: Alarm): Alarm => {
      alarm.addAlarmAction(new SnsAction(this.topic));
      alarm.addOkAction(new SnsAction(this.topic));
      return alarm;
    };

    const deadLetters = mailQueue.deadLetterQueue.metricApproximateNumberOfMessagesVisible({
      period: Duration.minutes(1),
      statistic: Stats.MAXIMUM,
    });
    this.deadLetterAlarm = notify(
      new Alarm(this, 'DeadLetters', {
        alarmName: `${stackName}-mail-in-dead-letter-queue`,
        alarmDescription:
          'Mail could not be delivered and waits in the dead-letter queue. See why with `smarthost failed`; ' +
          'after fixing the cause, `smarthost redrive` sends it again.',
        metric: deadLetters,
        threshold: 1,
        comparisonOperator: ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        evaluationPeriods: 1,
        treatMissingData: TreatMissingData.NOT_BREACHING,
      }),
    );

    this.heldForOperatorAlarm = notify(
      new Alarm(this, 'HeldForOperator', {
        alarmName: `${stackName}-held-for-operator`,
        alarmDescription:
          'Mail waits for an operator: Microsoft 365 refused it for a cause an admin must fix (revoked credentials, a missing ' +
          'SendAs grant, SMTP AUTH disabled). The function log names the fix; the message is retried slowly and ' +
          'moved to the dead-letter queue if it is still held after 13 days.',
        metric: new MathExpression({
          expression: deliveryMetricQuery('SUM', DELIVERY_METRICS.heldForOperator),
          usingMetrics: {},
          period: Duration.minutes(5),
          label: 'Held for the operator',
        }),
        threshold: 1,
        comparisonOperator: ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        evaluationPeriods: 1,
        treatMissingData: TreatMissingData.NOT_BREACHING,
      }),
    );

    const credentialWarningDays = (props.credentialExpiryWarning ?? Duration.days(30)).toDays();
    this.credentialExpiryAlarm = notify(
      new Alarm(this, 'CredentialExpiry', {
        alarmName: `${stackName}-credential-expiring`,
        alarmDescription:
          `The upstream credential stops working within ${credentialWarningDays} days: the certificate in the upstream secret ` +
          'expires, or (0 days) a new OAuth2 token could not be had. Upload a new certificate to the app registration and ' +
          'put it in the secret, or run `smarthost doctor` for the token error.',
        metric: new MathExpression({
          expression: deliveryMetricQuery('MIN', DELIVERY_METRICS.credentialExpiresInDays),
          usingMetrics: {},
          period: Duration.hours(1),
          label: 'Days until the upstream credential expires',
        }),
        threshold: credentialWarningDays,
        comparisonOperator: ComparisonOperator.LESS_THAN_OR_EQUAL_TO_THRESHOLD,
        evaluationPeriods: 1,
        treatMissingData: TreatMissingData.NOT_BREACHING,
      }),
    );

    const failed = new MathExpression({
      expression: deliveryMetricQuery('SUM', DELIVERY_METRICS.failed),
      usingMetrics: {},
      period: Duration.minutes(5),
      label: 'Deliveries failed',
    });
    this.deliveryFailedAlarm = notify(
      new Alarm(this, 'DeliveryFailed', {
        alarmName: `${stackName}-delivery-failed`,
        alarmDescription:
          'The delivery function gave up on a message (permanent or needs-operator failure, such as a refused ' +
          'sender or revoked credentials). Its reason is in the function log and in `smarthost failed`.',
        metric: failed,
        threshold: 1,
        comparisonOperator: ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        evaluationPeriods: 1,
        treatMissingData: TreatMissingData.NOT_BREACHING,
      }),
    );

    const oldestMessage = mailQueue.queue.metricApproximateAgeOfOldestMessage({
      period: Duration.minutes(1),
      statistic: Stats.MAXIMUM,
    });
    this.oldestMessageAlarm = notify(
      new Alarm(this, 'OldestMessage', {
        alarmName: `${stackName}-mail-waiting-too-long`,
        alarmDescription:
          `Mail has waited in the queue for more than ${maxMessageAge.toMinutes()} minutes: Microsoft 365 is refusing or ` +
          'throttling deliveries, or the function keeps failing. Check the function log.',
        metric: oldestMessage,
        threshold: maxMessageAge.toSeconds(),
        comparisonOperator: ComparisonOperator.GREATER_THAN_THRESHOLD,
        evaluationPeriods: 1,
        treatMissingData: TreatMissingData.NOT_BREACHING,
      }),
    );

    this.functionErrorsAlarm = notify(
      new Alarm(this, 'FunctionErrors', {
        alarmName: `${stackName}-delivery-function-errors`,
        alarmDescription: 'The delivery function crashed or timed out; its batch returns to the queue. Check the function log.',
        metric: deliveryFunction.metricErrors({ period: Duration.minutes(5), statistic: Stats.SUM }),
        threshold: 1,
        comparisonOperator: ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        evaluationPeriods: 1,
        treatMissingData: TreatMissingData.NOT_BREACHING,
      }),
    );
    this.functionThrottlesAlarm = notify(
      new Alarm(this, 'FunctionThrottles', {
        alarmName: `${stackName}-delivery-function-throttled`,
        alarmDescription: 'Lambda throttled the delivery function (account concurrency exhausted); mail is delayed.',
        metric: deliveryFunction.metricThrottles({ period: Duration.minutes(5), statistic: Stats.SUM }),
        threshold: 1,
        comparisonOperator: ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        evaluationPeriods: 1,
        treatMissingData: TreatMissingData.NOT_BREACHING,
      }),
    );

    const heartbeat = new Metric({
      namespace: AGENT_METRICS_NAMESPACE,
      metricName: AGENT_METRICS.heartbeat,
      statistic: Stats.SAMPLE_COUNT,
      period: Duration.minutes(1),
      label: 'Agent heartbeats',
    });
    this.heartbeatAlarm = notify(
      new Alarm(this, 'AgentHeartbeat', {
        alarmName: `${stackName}-office-agent-silent`,
        alarmDescription:
          `No heartbeat from the office agent for ${heartbeatMinutes} minutes: the box is off, offline or cannot reach AWS ` +
          '(credentials expired?). Devices may still hand it mail, which waits in its spool.',
        metric: heartbeat,
        threshold: 1,
        comparisonOperator: ComparisonOperator.LESS_THAN_THRESHOLD,
        evaluationPeriods: heartbeatMinutes,
        datapointsToAlarm: heartbeatMinutes,
        // No data is exactly the failure this alarm is for.
        treatMissingData: TreatMissingData.BREACHING,
      }),
    );

    const insights = (statistic: 'SUM' | 'AVG' | 'MAX', metricName: string, label: string): IMetric =>
      new MathExpression({ expression: deliveryMetricQuery(statistic, metricName), usingMetrics: {}, period: Duration.minutes(5), label });

    this.dashboard = new Dashboard(this, 'Dashboard', {
      dashboardName: `${stackName}-${region}`,
      defaultInterval: Duration.days(1),
    });
    this.dashboard.addWidgets(
      new TextWidget({
        markdown:
          '## smarthost\nFailed mail: `smarthost failed` lists the dead-letter queue with reasons, `smarthost redrive` ' +
          'sends it again once the cause is fixed. Setup and alarms: docs/deploy.md.',
        width: 24,
        height: 2,
      }),
    );
    this.dashboard.addWidgets(
      new AlarmStatusWidget({
        title: 'Alarms',
        alarms: [
          this.deadLetterAlarm,
          this.deliveryFailedAlarm,
          this.heldForOperatorAlarm,
          this.credentialExpiryAlarm,
          this.oldestMessageAlarm,
          this.functionErrorsAlarm,
          this.functionThrottlesAlarm,
          this.heartbeatAlarm,
        ],
        width: 24,
        height: 3,
      }),
    );
    const latency = new GraphWidget({
      title: 'Delivery latency (agent receipt to Microsoft 365 acceptance, ms)',
      left: [insights('AVG', DELIVERY_METRICS.latency, 'Average'), insights('MAX', DELIVERY_METRICS.latency, 'Maximum')],
      width: 12,
    });
    this.dashboard.addWidgets(
      new GraphWidget({
        title: 'Delivered and failed (per 5 minutes)',
        left: [
          insights('SUM', DELIVERY_METRICS.delivered, 'Delivered'),
          insights('SUM', DELIVERY_METRICS.failed, 'Failed'),
          insights('SUM', DELIVERY_METRICS.retried, 'Retried'),
          insights('SUM', DELIVERY_METRICS.throttled, 'Throttled by Microsoft 365'),
        ],
        width: 12,
      }),
      new GraphWidget({
        title: 'Failed by class (per 5 minutes)',
        left: [new MathExpression({ expression: failuresByClassQuery(), usingMetrics: {}, period: Duration.minutes(5), label: '' })],
        width: 12,
      }),
    );
    this.dashboard.addWidgets(
      new GraphWidget({
        title: 'Backlog',
        left: [
          mailQueue.queue.metricApproximateNumberOfMessagesVisible({ label: 'Queued', statistic: Stats.MAXIMUM }),
          mailQueue.queue.metricApproximateNumberOfMessagesNotVisible({ label: 'Being delivered or waiting to retry', statistic: Stats.MAXIMUM }),
          deadLetters.with({ label: 'Dead letters', period: Duration.minutes(5) }),
          new Metric({
            namespace: AGENT_METRICS_NAMESPACE,
            metricName: AGENT_METRICS.spoolDepth,
            statistic: Stats.MAXIMUM,
            label: 'In the office spool',
          }),
        ],
        right: [oldestMessage.with({ label: 'Oldest queued message (s)', period: Duration.minutes(5) })],
        width: 12,
      }),
      latency,
    );
    this.dashboard.addWidgets(
      new GraphWidget({
        title: 'Office agent heartbeat (per minute)',
        left: [heartbeat],
        leftYAxis: { min: 0 },
        width: 12,
      }),
      new GraphWidget({
        title: 'Delivery function',
        left: [
          deliveryFunction.metricInvocations({ statistic: Stats.SUM, label: 'Invocations' }),
          deliveryFunction.metricErrors({ statistic: Stats.SUM, label: 'Errors' }),
          deliveryFunction.metricThrottles({ statistic: Stats.SUM, label: 'Throttles' }),
        ],
        right: [deliveryFunction.metricDuration({ statistic: Stats.MAXIMUM, label: 'Longest run (ms)' })],
        width: 12,
      }),
    );
  }
}
