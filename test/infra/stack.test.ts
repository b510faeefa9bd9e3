import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { App, Duration, Stack } from 'aws-cdk-lib';
import { Match } from 'aws-cdk-lib/assertions';
import { FUNCTION_ENV, INCOMING_PREFIX, LEDGER_KEY, LEDGER_TTL_ATTRIBUTE } from '../../contract/cloudResources.ts';
import { BodyBucket } from '../../infra/constructs/BodyBucket.ts';
import { DeliveryFunction } from '../../infra/constructs/DeliveryFunction.ts';
import { VISIBILITY_TIMEOUT_FACTOR } from '../../contract/cloudResources.ts';
import { DeliveryLedger } from '../../infra/constructs/DeliveryLedger.ts';
import { MailQueue } from '../../infra/constructs/MailQueue.ts';
import { UpstreamSecret } from '../../infra/constructs/UpstreamSecret.ts';
import { loadConfigFromText } from '../../edge-agent/config/loadConfig.ts';
import { getAtt, logicalIdOf, ref, synthSmarthost } from './helpers/synthStack.ts';

const plain = synthSmarthost();
const withKey = synthSmarthost({ customerManagedKey: true });

function ids(result: typeof plain) {
  const { stack } = result;
  return {
    queue: logicalIdOf(stack, stack.mailQueue.queue),
    dlq: logicalIdOf(stack, stack.mailQueue.deadLetterQueue),
    bucket: logicalIdOf(stack, stack.bodyBucket.bucket),
    secret: stack.getLogicalId(stack.upstreamSecret.resource),
    table: logicalIdOf(stack, stack.ledger.table),
    fn: logicalIdOf(stack, stack.delivery.function),
    key: stack.dataKey ? logicalIdOf(stack, stack.dataKey) : undefined,
  };
}

describe('MailQueue', () => {
  it('encrypts both queues with SQS-managed keys by default', () => {
    const { queue, dlq } = ids(plain);
    for (const id of [queue, dlq]) {
      const properties = plain.template.toJSON().Resources[id].Properties;
      assert.equal(properties.SqsManagedSseEnabled, true, id);
      assert.equal(properties.KmsMasterKeyId, undefined, id);
    }
  });

  it('encrypts both queues with the customer-managed key when asked', () => {
    const { queue, dlq, key } = ids(withKey);
    assert.ok(key);
    for (const id of [queue, dlq]) {
      assert.deepEqual(withKey.template.toJSON().Resources[id].Properties.KmsMasterKeyId, getAtt(key), id);
    }
    withKey.template.hasResourceProperties('AWS::KMS::Key', { EnableKeyRotation: true, Description: Match.stringLikeRegexp('queued mail') });
  });

  it('refuses every request that is not over TLS, on both queues', () => {
    const { queue, dlq } = ids(plain);
    for (const id of [queue, dlq]) {
      plain.template.hasResourceProperties('AWS::SQS::QueuePolicy', {
        Queues: [ref(id)],
        PolicyDocument: {
          Statement: Match.arrayWith([
            {
              Action: 'sqs:*',
              Effect: 'Deny',
              Principal: { AWS: '*' },
              Resource: getAtt(id),
              Condition: { Bool: { 'aws:SecureTransport': 'false' } },
            },
          ]),
        },
      });
    }
  });

  it('takes 1 MiB messages and keeps them 14 days, on both queues', () => {
    const { queue, dlq } = ids(plain);
    for (const id of [queue, dlq]) {
      const properties = plain.template.toJSON().Resources[id].Properties;
      assert.equal(properties.MaximumMessageSize, 1_048_576, id);
      assert.equal(properties.MessageRetentionPeriod, 14 * 24 * 3600, id);
    }
  });

  it('sends a message to the dead-letter queue after 100 receives (above the ~80 attempts of 13 days holding for the operator)', () => {
    const { queue, dlq } = ids(plain);
    assert.deepEqual(plain.template.toJSON().Resources[queue].Properties.RedrivePolicy, { deadLetterTargetArn: getAtt(dlq), maxReceiveCount: 100 });
    assert.equal(plain.template.toJSON().Resources[dlq].Properties.RedrivePolicy, undefined, 'the DLQ itself has none');
  });

  it('hides a received message for at least 6 times the function timeout', () => {
    const { queue, fn } = ids(plain);
    const resources = plain.template.toJSON().Resources;
    const visibility = resources[queue].Properties.VisibilityTimeout as number;
    const timeout = resources[fn].Properties.Timeout as number;
    assert.equal(timeout, 300);
    assert.equal(visibility, 1800);
    assert.ok(visibility >= VISIBILITY_TIMEOUT_FACTOR * timeout);
  });

  it('refuses a function whose timeout the visibility timeout does not cover 6 times, naming both', () => {
    const stack = new Stack(new App(), 'Check');
    const mailQueue = new MailQueue(stack, 'Mail', { visibilityTimeout: Duration.minutes(29) });
    assert.throws(
      () =>
        new DeliveryFunction(stack, 'Delivery', {
          mailQueue,
          bodyBucket: new BodyBucket(stack, 'Bodies'),
          upstreamSecret: new UpstreamSecret(stack, 'Upstream'),
          ledger: new DeliveryLedger(stack, 'Ledger'),
          timeout: Duration.minutes(5),
        }),
      {
        name: 'RangeError',
        message: "the queue's visibility timeout (1740 s) must be at least 6 times the function timeout (300 s), that is 1800 s",
      },
    );
  });

  it('refuses a maxReceiveCount SQS would not take', () => {
    const stack = new Stack(new App(), 'Check');
    assert.throws(() => new MailQueue(stack, 'Mail', { visibilityTimeout: Duration.minutes(30), maxReceiveCount: 0 }), {
      message: 'MailQueue maxReceiveCount must be a whole number from 1 to 1000, got 0',
    });
  });
});

describe('BodyBucket', () => {
  it('blocks all public access and owns every object', () => {
    plain.template.hasResourceProperties('AWS::S3::Bucket', {
      PublicAccessBlockConfiguration: { BlockPublicAcls: true, BlockPublicPolicy: true, IgnorePublicAcls: true, RestrictPublicBuckets: true },
      OwnershipControls: { Rules: [{ ObjectOwnership: 'BucketOwnerEnforced' }] },
    });
  });

  it('encrypts with S3-managed keys by default, with the customer-managed key (and a bucket key) when asked', () => {
    plain.template.hasResourceProperties('AWS::S3::Bucket', {
      BucketEncryption: { ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } }] },
    });
    const { key } = ids(withKey);
    assert.ok(key);
    withKey.template.hasResourceProperties('AWS::S3::Bucket', {
      BucketEncryption: {
        ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: 'aws:kms', KMSMasterKeyID: getAtt(key) }, BucketKeyEnabled: true }],
      },
    });
  });

  it('denies requests without TLS or below TLS 1.2', () => {
    const { bucket } = ids(plain);
    plain.template.hasResourceProperties('AWS::S3::BucketPolicy', {
      Bucket: ref(bucket),
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({ Effect: 'Deny', Action: 's3:*', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
          Match.objectLike({ Effect: 'Deny', Action: 's3:*', Condition: { NumericLessThan: { 's3:TlsVersion': 1.2 } } }),
        ]),
      },
    });
  });

  it('expires leftovers under incoming/ after 30 days and abandoned multipart uploads after 1 day', () => {
    plain.template.hasResourceProperties('AWS::S3::Bucket', {
      LifecycleConfiguration: {
        Rules: [
          {
            Id: 'expire-leftover-bodies',
            Prefix: INCOMING_PREFIX,
            Status: 'Enabled',
            ExpirationInDays: 30,
            AbortIncompleteMultipartUpload: { DaysAfterInitiation: 1 },
          },
        ],
      },
    });
  });

  it('refuses an expiry a redriven message could outlive', () => {
    const stack = new Stack(new App(), 'Check');
    assert.throws(() => new BodyBucket(stack, 'Bodies', { leftoverExpiry: Duration.days(14) }), {
      message: "BodyBucket leftoverExpiry must be longer than the queue's 14-day retention, got 14 days",
    });
  });
});

describe('UpstreamSecret', () => {
  it('is created without a value: neither SecretString nor GenerateSecretString', () => {
    const { secret } = ids(plain);
    const properties = plain.template.toJSON().Resources[secret].Properties;
    assert.deepEqual(Object.keys(properties).sort(), ['Description']);
    assert.doesNotMatch(JSON.stringify(plain.template.toJSON()), /SecretString/);
  });

  it('is encrypted with the customer-managed key when asked', () => {
    const { secret, key } = ids(withKey);
    assert.ok(key);
    assert.deepEqual(withKey.template.toJSON().Resources[secret].Properties.KmsKeyId, getAtt(key));
  });

  it('is what the function reads', () => {
    const { secret, fn } = ids(plain);
    assert.deepEqual(plain.template.toJSON().Resources[fn].Properties.Environment.Variables[FUNCTION_ENV.secretArn], ref(secret));
  });
});

describe('DeliveryLedger', () => {
  it('is an on-demand table keyed on the message id, with TTL and point-in-time recovery', () => {
    plain.template.hasResourceProperties('AWS::DynamoDB::Table', {
      KeySchema: [{ AttributeName: LEDGER_KEY, KeyType: 'HASH' }],
      AttributeDefinitions: [{ AttributeName: LEDGER_KEY, AttributeType: 'S' }],
      BillingMode: 'PAY_PER_REQUEST',
      TimeToLiveSpecification: { AttributeName: LEDGER_TTL_ATTRIBUTE, Enabled: true },
      PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
    });
  });
});

describe('stack outputs', () => {
  it('give the queue, dead-letter queue, bucket, secret, ledger, agent role and alarm topic', () => {
    const { queue, dlq, bucket, secret, table } = ids(plain);
    const outputs = plain.template.toJSON().Outputs as Record<string, { Value: unknown }>;
    assert.deepEqual(outputs.QueueUrl?.Value, ref(queue));
    assert.deepEqual(outputs.QueueArn?.Value, getAtt(queue));
    assert.deepEqual(outputs.DeadLetterQueueUrl?.Value, ref(dlq));
    assert.deepEqual(outputs.DeadLetterQueueArn?.Value, getAtt(dlq));
    assert.deepEqual(outputs.BucketName?.Value, ref(bucket));
    assert.deepEqual(outputs.SecretArn?.Value, ref(secret));
    assert.deepEqual(outputs.LedgerTableName?.Value, ref(table));
    assert.deepEqual(outputs.AgentRoleArn?.Value, getAtt(logicalIdOf(plain.stack, plain.stack.agentAccess.role)));
    assert.deepEqual(outputs.AlarmTopicArn?.Value, ref(logicalIdOf(plain.stack, plain.stack.alarms.topic)));
    assert.deepEqual(outputs.DeliveryLogGroupName?.Value, ref(logicalIdOf(plain.stack, plain.stack.delivery.logGroup)));
    assert.equal(outputs.RolesAnywhereProfileArn, undefined, 'only with Roles Anywhere');
  });

  it('include an agent config snippet the agent accepts as its queue block', () => {
    const { queue, bucket } = ids(plain);
    const snippet = plain.template.toJSON().Outputs.AgentConfigSnippet.Value as { 'Fn::Join': [string, unknown[]] };
    const deployed: Record<string, string> = {
      [queue]: 'https://sqs.eu-west-1.amazonaws.com/123456789012/Smarthost-MailQueueC8B8B9FB-AbCdEf',
      [bucket]: 'smarthost-bodiesbucket7cdfede9-abcdef',
    };
    const text = snippet['Fn::Join'][1]
      .map((part) => (typeof part === 'string' ? part : deployed[(part as { Ref: string }).Ref]))
      .join(snippet['Fn::Join'][0]);
    const config = loadConfigFromText(text, { baseDir: '/etc/smarthost', env: {} });
    assert.equal(config.queue.kind, 'sqs');
    assert.deepEqual(
      { queueUrl: config.queue.sqs?.queueUrl, region: config.queue.sqs?.region, bucket: config.queue.sqs?.bucket, prefix: config.queue.sqs?.prefix },
      { queueUrl: deployed[queue], region: 'eu-west-1', bucket: deployed[bucket], prefix: INCOMING_PREFIX },
    );
  });
});
