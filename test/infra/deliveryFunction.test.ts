import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { DELIVERY_METRICS_NAMESPACE, FUNCTION_ENV } from '../../contract/cloudResources.ts';
import { getAtt, logicalIdOf, objectsUnder, ref, synthSmarthost, type SynthResult } from './helpers/synthStack.ts';

const plain = synthSmarthost();
const withKey = synthSmarthost({ customerManagedKey: true, failureNoticeTo: 'postmaster@contoso.com', delayedNoticeAfter: '8h' });

function resource(result: SynthResult, logicalId: string): { Type: string; Properties: Record<string, any> } {
  return result.template.toJSON().Resources[logicalId];
}

function ids(result: SynthResult) {
  const { stack } = result;
  return {
    fn: logicalIdOf(stack, stack.delivery.function),
    role: logicalIdOf(stack, stack.delivery.role),
    logs: logicalIdOf(stack, stack.delivery.logGroup),
    queue: logicalIdOf(stack, stack.mailQueue.queue),
    dlq: logicalIdOf(stack, stack.mailQueue.deadLetterQueue),
    bucket: logicalIdOf(stack, stack.bodyBucket.bucket),
    secret: stack.getLogicalId(stack.upstreamSecret.resource),
    table: logicalIdOf(stack, stack.ledger.table),
    key: stack.dataKey ? logicalIdOf(stack, stack.dataKey) : undefined,
  };
}

/** Directories the assets manifest packs as zips: the function code is the only one. */
function zipAssetPaths(result: SynthResult): string[] {
  const manifest = JSON.parse(readFileSync(join(result.assembly.directory, `${result.stack.artifactId}.assets.json`), 'utf8')) as {
    files: Record<string, { source: { path: string; packaging?: string } }>;
  };
  return Object.values(manifest.files)
    .filter((file) => file.source.packaging === 'zip')
    .map((file) => file.source.path);
}

/** Exactly what the delivery role may do, with the service keys; `key` adds the KMS statement. */
function expectedDeliveryStatements(i: ReturnType<typeof ids>) {
  const statements: unknown[] = [
    { Sid: 'WriteOwnLogs', Effect: 'Allow', Action: ['logs:CreateLogStream', 'logs:PutLogEvents'], Resource: getAtt(i.logs) },
    {
      Sid: 'ConsumeMailQueue',
      Effect: 'Allow',
      Action: ['sqs:ChangeMessageVisibility', 'sqs:DeleteMessage', 'sqs:GetQueueAttributes', 'sqs:ReceiveMessage'],
      Resource: getAtt(i.queue),
    },
    { Sid: 'MoveFailuresToDeadLetterQueue', Effect: 'Allow', Action: 'sqs:SendMessage', Resource: getAtt(i.dlq) },
    { Sid: 'ReadAndDeleteBodies', Effect: 'Allow', Action: ['s3:DeleteObject', 's3:GetObject'], Resource: objectsUnder(i.bucket, 'incoming/*') },
    { Sid: 'TellMissingBodies', Effect: 'Allow', Action: 's3:ListBucket', Resource: getAtt(i.bucket) },
    { Sid: 'ReadUpstreamSecret', Effect: 'Allow', Action: 'secretsmanager:GetSecretValue', Resource: ref(i.secret) },
    {
      Sid: 'KeepDeliveryLedger',
      Effect: 'Allow',
      Action: ['dynamodb:DeleteItem', 'dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem'],
      Resource: getAtt(i.table),
    },
  ];
  if (i.key) {
    statements.push({ Sid: 'UseDataKeys', Effect: 'Allow', Action: ['kms:Decrypt', 'kms:GenerateDataKey'], Resource: getAtt(i.key) });
  }
  return statements;
}

describe('DeliveryFunction', () => {
  it('runs on Node.js 24, arm64, 1024 MB, 5 minutes, with its own log group kept 3 months', () => {
    const i = ids(plain);
    const fn = resource(plain, i.fn).Properties;
    assert.equal(fn.Runtime, 'nodejs24.x');
    assert.deepEqual(fn.Architectures, ['arm64']);
    assert.equal(fn.MemorySize, 1024);
    assert.equal(fn.Timeout, 300);
    assert.equal(fn.Handler, 'index.handler');
    assert.deepEqual(fn.Role, getAtt(i.role));
    assert.deepEqual(fn.LoggingConfig, { LogGroup: ref(i.logs) });
    assert.equal(resource(plain, i.logs).Properties.RetentionInDays, 90);
  });

  it('gets the contract environment: queue, secret, dead-letter queue, ledger, secret TTL, instances', () => {
    const i = ids(plain);
    assert.deepEqual(resource(plain, i.fn).Properties.Environment.Variables, {
      [FUNCTION_ENV.queueUrl]: ref(i.queue),
      [FUNCTION_ENV.secretArn]: ref(i.secret),
      [FUNCTION_ENV.deadLetterQueueUrl]: ref(i.dlq),
      [FUNCTION_ENV.ledgerTable]: ref(i.table),
      [FUNCTION_ENV.secretTtlSeconds]: '300',
      [FUNCTION_ENV.instances]: '2',
      POWERTOOLS_SERVICE_NAME: 'smarthost-delivery',
      POWERTOOLS_METRICS_NAMESPACE: DELIVERY_METRICS_NAMESPACE,
      NODE_OPTIONS: '--enable-source-maps',
    });
  });

  it('gets the failure notice address only when one is configured', () => {
    assert.equal(resource(withKey, ids(withKey).fn).Properties.Environment.Variables[FUNCTION_ENV.failureNoticeTo], 'postmaster@contoso.com');
    assert.equal(resource(plain, ids(plain).fn).Properties.Environment.Variables[FUNCTION_ENV.failureNoticeTo], undefined);
  });

  it('gets the delayed notice threshold only when one is configured (else the function default)', () => {
    assert.equal(resource(withKey, ids(withKey).fn).Properties.Environment.Variables[FUNCTION_ENV.delayedNoticeAfter], '8h');
    assert.equal(resource(plain, ids(plain).fn).Properties.Environment.Variables[FUNCTION_ENV.delayedNoticeAfter], undefined);
  });

  it("is bundled by the local esbuild into a minified ES module under 1 MB with a require shim, the AWS SDK the runtime's", () => {
    const fn = resource(plain, ids(plain).fn);
    const dir = join(plain.assembly.directory, zipAssetPaths(plain)[0] ?? assert.fail('no zip asset'));
    const code = readFileSync(join(dir, 'index.mjs'), 'utf8');
    assert.ok(existsSync(join(dir, 'index.mjs.map')), 'source map');
    assert.match(code.slice(0, 200), /^import \{ createRequire as __smarthostCreateRequire \} from 'node:module'; const require = /);
    // (assert.ok, not match: a failure must not print the whole bundle)
    assert.ok(/\bfrom\s*"@aws-sdk\/client-sqs"/.test(code), 'the SQS client is imported from the runtime');
    assert.ok(!code.includes('AmazonSQS') && !code.includes('x-amz-content-sha256') && !/\bfrom\s*"@smithy\//.test(code), 'no SDK code inside, and nothing the runtime does not promise');
    assert.ok(Buffer.byteLength(code) <= 1_000_000, `at most 1 MB (${Buffer.byteLength(code)} bytes)`);
    const lines = code.split('\n').length;
    assert.ok(code.length / lines > 1000, `minified (${lines} lines for ${code.length} bytes; only template literals break lines)`);
    assert.ok(fn.Properties.Code.S3Key, 'uploaded as an asset');
  });

  it('reads the queue in batches of 10, reports partial failures, and runs at most 2 at once', () => {
    const i = ids(plain);
    plain.template.resourcePropertiesCountIs('AWS::Lambda::EventSourceMapping', {}, 1);
    plain.template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      EventSourceArn: getAtt(i.queue),
      FunctionName: ref(i.fn),
      BatchSize: 10,
      FunctionResponseTypes: ['ReportBatchItemFailures'],
      ScalingConfig: { MaximumConcurrency: 2 },
    });
  });

  it('has a role with exactly the actions and resources the handler uses, nothing managed', () => {
    const i = ids(plain);
    const role = resource(plain, i.role).Properties;
    assert.deepEqual(role.AssumeRolePolicyDocument.Statement, [
      { Action: 'sts:AssumeRole', Effect: 'Allow', Principal: { Service: 'lambda.amazonaws.com' } },
    ]);
    assert.equal(role.ManagedPolicyArns, undefined);
    assert.equal(role.Policies.length, 1);
    assert.deepEqual(role.Policies[0].PolicyDocument.Statement, expectedDeliveryStatements(i));
    plain.template.resourceCountIs('AWS::IAM::Policy', 0);
  });

  it('with a customer-managed key, may also decrypt and generate data keys with that key', () => {
    const i = ids(withKey);
    assert.ok(i.key);
    assert.deepEqual(resource(withKey, i.role).Properties.Policies[0].PolicyDocument.Statement, expectedDeliveryStatements(i));
  });
});
