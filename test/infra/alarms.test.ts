import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Match } from 'aws-cdk-lib/assertions';
import { AGENT_METRICS, AGENT_METRICS_NAMESPACE, DELIVERY_METRICS } from '../../contract/cloudResources.ts';
import { deliveryMetricQuery } from '../../infra/constructs/Alarms.ts';
import { getAtt, logicalIdOf, ref, synthSmarthost } from './helpers/synthStack.ts';

const plain = synthSmarthost();
const withEmail = synthSmarthost({ alarmEmail: 'ops@contoso.com' });
const { stack, template } = plain;

const topic = logicalIdOf(stack, stack.alarms.topic);
const topicKey = logicalIdOf(stack, stack.alarms.topicKey);
const queue = logicalIdOf(stack, stack.mailQueue.queue);
const dlq = logicalIdOf(stack, stack.mailQueue.deadLetterQueue);
const fn = logicalIdOf(stack, stack.delivery.function);

function alarm(construct: { node: { defaultChild?: unknown } }): Record<string, any> {
  return template.toJSON().Resources[logicalIdOf(stack, construct)].Properties;
}

/** Every alarm notifies the topic when it fires and when it clears. */
function assertNotifies(properties: Record<string, any>): void {
  assert.deepEqual(properties.AlarmActions, [ref(topic)]);
  assert.deepEqual(properties.OKActions, [ref(topic)]);
}

describe('Alarms', () => {
  it('fire when the dead-letter queue holds a message', () => {
    const properties = alarm(stack.alarms.deadLetterAlarm);
    assert.deepEqual(
      {
        namespace: properties.Namespace,
        metric: properties.MetricName,
        dimensions: properties.Dimensions,
        statistic: properties.Statistic,
        period: properties.Period,
      },
      {
        namespace: 'AWS/SQS',
        metric: 'ApproximateNumberOfMessagesVisible',
        dimensions: [{ Name: 'QueueName', Value: getAtt(dlq, 'QueueName') }],
        statistic: 'Maximum',
        period: 60,
      },
    );
    assert.equal(properties.ComparisonOperator, 'GreaterThanOrEqualToThreshold');
    assert.equal(properties.Threshold, 1);
    assert.equal(properties.EvaluationPeriods, 1);
    assert.equal(properties.TreatMissingData, 'notBreaching');
    assertNotifies(properties);
  });

  it('fire on one HeldForOperator, summed over the service dimension of the contract namespace', () => {
    const properties = alarm(stack.alarms.heldForOperatorAlarm);
    assert.deepEqual(properties.Metrics, [
      { Id: 'expr_1', Expression: 'SELECT SUM("HeldForOperator") FROM SCHEMA("Smarthost", service)', Label: 'Held for the operator', Period: 300, ReturnData: true },
    ]);
    assert.equal(properties.Threshold, 1);
    assert.equal(properties.TreatMissingData, 'notBreaching');
    assertNotifies(properties);
  });

  it('fire on one DeliveryFailed, summed over the service dimension of the contract namespace', () => {
    const properties = alarm(stack.alarms.deliveryFailedAlarm);
    assert.deepEqual(properties.Metrics, [
      {
        Id: 'expr_1',
        Expression: 'SELECT SUM("DeliveryFailed") FROM SCHEMA("Smarthost", service)',
        Label: 'Deliveries failed',
        Period: 300,
        ReturnData: true,
      },
    ]);
    assert.equal(properties.ComparisonOperator, 'GreaterThanOrEqualToThreshold');
    assert.equal(properties.Threshold, 1);
    assert.equal(properties.TreatMissingData, 'notBreaching');
    assertNotifies(properties);
  });

  it('fire when the oldest queued message is older than 15 minutes', () => {
    const properties = alarm(stack.alarms.oldestMessageAlarm);
    assert.equal(properties.Namespace, 'AWS/SQS');
    assert.equal(properties.MetricName, 'ApproximateAgeOfOldestMessage');
    assert.deepEqual(properties.Dimensions, [{ Name: 'QueueName', Value: getAtt(queue, 'QueueName') }]);
    assert.equal(properties.Statistic, 'Maximum');
    assert.equal(properties.ComparisonOperator, 'GreaterThanThreshold');
    assert.equal(properties.Threshold, 900);
    assert.equal(properties.TreatMissingData, 'notBreaching');
    assertNotifies(properties);
  });

  for (const [name, metricName, pick] of [
    ['errors', 'Errors', () => stack.alarms.functionErrorsAlarm],
    ['throttles', 'Throttles', () => stack.alarms.functionThrottlesAlarm],
  ] as const) {
    it(`fire on one delivery function ${name} in 5 minutes`, () => {
      const properties = alarm(pick());
      assert.equal(properties.Namespace, 'AWS/Lambda');
      assert.equal(properties.MetricName, metricName);
      assert.deepEqual(properties.Dimensions, [{ Name: 'FunctionName', Value: ref(fn) }]);
      assert.equal(properties.Statistic, 'Sum');
      assert.equal(properties.Period, 300);
      assert.equal(properties.ComparisonOperator, 'GreaterThanOrEqualToThreshold');
      assert.equal(properties.Threshold, 1);
      assert.equal(properties.TreatMissingData, 'notBreaching');
      assertNotifies(properties);
    });
  }

  it('fire after 5 minutes without an agent heartbeat, missing data counting as breaching', () => {
    const properties = alarm(stack.alarms.heartbeatAlarm);
    assert.deepEqual(properties.Metrics, [
      {
        Id: 'm1',
        Label: 'Agent heartbeats',
        MetricStat: {
          Metric: { Namespace: AGENT_METRICS_NAMESPACE, MetricName: AGENT_METRICS.heartbeat },
          Period: 60,
          Stat: 'SampleCount',
        },
        ReturnData: true,
      },
    ]);
    assert.equal(properties.ComparisonOperator, 'LessThanThreshold');
    assert.equal(properties.Threshold, 1);
    assert.equal(properties.EvaluationPeriods, 5);
    assert.equal(properties.DatapointsToAlarm, 5);
    assert.equal(properties.TreatMissingData, 'breaching');
    assertNotifies(properties);
  });

  it('fire when the upstream credential stops working within 30 days (the minimum CredentialExpiresInDays of an hour)', () => {
    const properties = alarm(stack.alarms.credentialExpiryAlarm);
    assert.deepEqual(properties.Metrics, [
      {
        Id: 'expr_1',
        Expression: 'SELECT MIN("CredentialExpiresInDays") FROM SCHEMA("Smarthost", service)',
        Label: 'Days until the upstream credential expires',
        Period: 3600,
        ReturnData: true,
      },
    ]);
    assert.equal(DELIVERY_METRICS.credentialExpiresInDays, 'CredentialExpiresInDays');
    assert.equal(properties.ComparisonOperator, 'LessThanOrEqualToThreshold');
    assert.equal(properties.Threshold, 30);
    assert.equal(properties.TreatMissingData, 'notBreaching', 'a client secret alone reports nothing until it fails');
    assert.match(properties.AlarmDescription, /smarthost doctor/);
    assertNotifies(properties);
  });

  it('are these eight, no more', () => {
    template.resourceCountIs('AWS::CloudWatch::Alarm', 8);
  });
});

describe('alarm topic', () => {
  it('is encrypted with its own rotating key, which CloudWatch may use to publish', () => {
    template.hasResourceProperties('AWS::SNS::Topic', { KmsMasterKeyId: getAtt(topicKey) });
    template.hasResourceProperties('AWS::KMS::Key', {
      EnableKeyRotation: true,
      KeyPolicy: {
        Statement: Match.arrayWith([
          {
            Sid: 'CloudWatchAlarmsPublish',
            Effect: 'Allow',
            Principal: { Service: 'cloudwatch.amazonaws.com' },
            Action: ['kms:Decrypt', 'kms:GenerateDataKey'],
            Resource: '*',
          },
        ]),
      },
    });
  });

  it('lets CloudWatch alarms of this account publish, and nobody without TLS', () => {
    template.hasResourceProperties('AWS::SNS::TopicPolicy', {
      Topics: [ref(topic)],
      PolicyDocument: {
        Statement: [
          {
            Sid: 'AllowPublishThroughSSLOnly',
            Effect: 'Deny',
            Principal: '*',
            Action: 'sns:Publish',
            Resource: ref(topic),
            Condition: { Bool: { 'aws:SecureTransport': 'false' } },
          },
          {
            Sid: 'CloudWatchAlarmsPublish',
            Effect: 'Allow',
            Principal: { Service: 'cloudwatch.amazonaws.com' },
            Action: 'sns:Publish',
            Resource: ref(topic),
            Condition: { ArnLike: { 'aws:SourceArn': 'arn:aws:cloudwatch:eu-west-1:123456789012:alarm:*' } },
          },
        ],
      },
    });
  });

  it('gets an email subscription only when alarmEmail is given', () => {
    template.resourceCountIs('AWS::SNS::Subscription', 0);
    withEmail.template.hasResourceProperties('AWS::SNS::Subscription', {
      Protocol: 'email',
      Endpoint: 'ops@contoso.com',
      TopicArn: ref(logicalIdOf(withEmail.stack, withEmail.stack.alarms.topic)),
    });
  });
});

describe('dashboard', () => {
  it('shows delivered, failed, backlog, latency and the agent heartbeat', () => {
    const dashboard = Object.values(template.findResources('AWS::CloudWatch::Dashboard'))[0] as {
      Properties: { DashboardBody: { 'Fn::Join': [string, unknown[]] } };
    };
    // Tokens (queue names, the function name) sit inside JSON strings: a placeholder keeps it JSON.
    const [separator, parts] = dashboard.Properties.DashboardBody['Fn::Join'];
    const body: unknown = JSON.parse(parts.map((part) => (typeof part === 'string' ? part : 'TOKEN')).join(separator));
    const shown = new Set(stringsIn(body));
    for (const expected of [
      deliveryMetricQuery('SUM', DELIVERY_METRICS.delivered),
      deliveryMetricQuery('SUM', DELIVERY_METRICS.failed),
      'ApproximateNumberOfMessagesVisible',
      AGENT_METRICS.spoolDepth,
      deliveryMetricQuery('AVG', DELIVERY_METRICS.latency),
      AGENT_METRICS.heartbeat,
    ]) {
      assert.ok(shown.has(expected), `dashboard shows ${expected}`);
    }
  });
});

function stringsIn(value: unknown): string[] {
  if (typeof value === 'string') return [value];
  if (Array.isArray(value)) return value.flatMap(stringsIn);
  if (typeof value === 'object' && value !== null) return Object.values(value).flatMap(stringsIn);
  return [];
}
