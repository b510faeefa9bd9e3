import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { agentConfigSchema, type AgentConfigInput } from '../../edge-agent/config/agentConfigSchema.ts';
import { runDoctor } from '../../edge-agent/doctor/runDoctor.ts';
import { DOCTOR_EXIT } from '../../edge-agent/doctor/report.ts';
import { BUCKET_PROBE_NAME, type CloudDoctorEndpoints } from '../../edge-agent/doctor/checks/cloud.ts';
import { AGENT_METRICS, AGENT_METRICS_NAMESPACE, INCOMING_PREFIX } from '../../contract/cloudResources.ts';
import { awsTestEnv, TEST_CREDENTIALS, TEST_REGION, UNREACHABLE_ENDPOINT } from '../../testbed/aws/awsTestEnv.ts';
import { startLocalSqs, type LocalSqs } from '../../testbed/aws/localSqs.ts';
import { startLocalS3, type LocalS3 } from '../../testbed/aws/localS3.ts';
import { startLocalSecretsManager, type LocalSecretsManager } from '../../testbed/aws/localSecretsManager.ts';
import { startLocalCloudWatch, type LocalCloudWatch } from '../../testbed/aws/localCloudWatch.ts';
import { jsonOperation, startAccessDeniedFront, type AccessDeniedFront } from '../../testbed/aws/accessDeniedFront.ts';
import { Capture, line } from '../../testbed/helpers/doctorRun.ts';

const SECRET_VALUE_MARKER = 'client-secret-that-must-not-be-printed';

describe('smarthost doctor in cloud mode (queue.kind sqs), against the local AWS stand-ins', () => {
  let sqs: LocalSqs;
  let s3: LocalS3;
  let secrets: LocalSecretsManager;
  let cloudWatch: LocalCloudWatch;
  let secretArn: string;
  /** The agent role as the stack makes it: everything passes except reading the secret. */
  let secretDenied: AccessDeniedFront;
  /** An identity without the agent's grants. */
  const fronts: AccessDeniedFront[] = [];
  let sqsDenied: AccessDeniedFront;
  let s3Denied: AccessDeniedFront;
  let cloudWatchDenied: AccessDeniedFront;
  const savedEnv = { ...process.env };

  before(async () => {
    [sqs, s3, secrets, cloudWatch] = await Promise.all([startLocalSqs(), startLocalS3(), startLocalSecretsManager(), startLocalCloudWatch()]);
    ({ arn: secretArn } = secrets.setSecret('smarthost-upstream', JSON.stringify({ host: 'smtp.office365.com', auth: { type: 'oauth2', clientSecret: SECRET_VALUE_MARKER } })));
    secretDenied = await startAccessDeniedFront(secrets.endpoint, 'json', (r) => (jsonOperation(r) === 'GetSecretValue' ? 'secretsmanager:GetSecretValue' : undefined));
    sqsDenied = await startAccessDeniedFront(sqs.endpoint, 'json', (r) => `sqs:${jsonOperation(r)}`);
    s3Denied = await startAccessDeniedFront(s3.endpoint, 's3', (r) => (r.method === 'PUT' ? 's3:PutObject' : undefined));
    cloudWatchDenied = await startAccessDeniedFront(cloudWatch.endpoint, 'json', () => 'cloudwatch:PutMetricData');
    fronts.push(secretDenied, sqsDenied, s3Denied, cloudWatchDenied);
    // The SDK's default chain finds these (environment variables); every other service and
    // ~/.aws are pointed away, so nothing but loopback can be reached.
    Object.assign(process.env, awsTestEnv({ sqs: sqs.endpoint, s3: s3.endpoint, cloudwatch: cloudWatch.endpoint, secretsManager: secretDenied.endpoint }));
    delete process.env.AWS_PROFILE;
    delete process.env.AWS_SESSION_TOKEN;
  });

  after(async () => {
    process.env = savedEnv;
    await Promise.all([...fronts.map((front) => front.stop()), sqs.stop(), s3.stop(), secrets.stop(), cloudWatch.stop()]);
  });

  async function doctor(endpoints: CloudDoctorEndpoints, sqsOverrides: Record<string, unknown> = {}, extra: AgentConfigInput = {}): Promise<{ code: number; out: string }> {
    const config = agentConfigSchema.parse({
      spool: { dir: join(tmpdir(), 'doctor-cloud-unused') },
      queue: { kind: 'sqs', sqs: { queueUrl: sqs.queueUrl, bucket: s3.bucket, region: TEST_REGION, ...sqsOverrides } },
      ...extra,
    });
    const out = new Capture();
    const code = await runDoctor(config, { out, secretArn, awsEndpoints: { sqs: sqs.endpoint, s3: s3.endpoint, cloudwatch: cloudWatch.endpoint, secretsManager: secretDenied.endpoint, ...endpoints } });
    assert.ok(!out.text.includes(TEST_CREDENTIALS.secretAccessKey), 'printed an AWS key');
    assert.ok(!out.text.includes(SECRET_VALUE_MARKER), 'printed the secret');
    return { code, out: out.text };
  }

  it("with the agent role's permissions: every step ok, the probe and the heartbeat arrive, the secret is out of reach", async () => {
    const heartbeatsBefore = cloudWatch.published.length;
    const { code, out } = await doctor({});
    assert.equal(code, DOCTOR_EXIT.ok, out);
    assert.match(line(out, 'ok', 'aws-creds'), /environment variables \(AWS_ACCESS_KEY_ID\), long-term keys/);
    assert.match(line(out, 'ok', 'queue'), /reachable .*MaximumMessageSize 1048576 bytes/);
    assert.match(line(out, 'ok', 'bucket'), new RegExp(`s3://${s3.bucket}/${INCOMING_PREFIX}${BUCKET_PROBE_NAME} written`));
    assert.match(line(out, 'ok', 'heartbeat'), /accepted/);
    assert.match(line(out, 'ok', 'secret'), /not readable by the agent \(AccessDenied\)/);
    assert.deepEqual(cloudWatch.published.slice(heartbeatsBefore), [{ namespace: AGENT_METRICS_NAMESPACE, name: AGENT_METRICS.heartbeat, value: 1 }]);
    const probe = await s3.client.send(new GetObjectCommand({ Bucket: s3.bucket, Key: `${INCOMING_PREFIX}${BUCKET_PROBE_NAME}` }));
    assert.match(await probe.Body!.transformToString(), /smarthost doctor/);
    assert.deepEqual(secretDenied.denied.at(-1), 'secretsmanager:GetSecretValue');
    // No upstream inline in cloud mode: said, not tested.
    assert.match(line(out, 'info', 'upstream'), /cloud mode/);
  });

  it('warns, with the fix, when the agent can read the upstream secret', async () => {
    const { code, out } = await doctor({ secretsManager: secrets.endpoint });
    assert.equal(code, DOCTOR_EXIT.ok, out);
    const warning = line(out, 'WARN', 'secret');
    assert.match(warning, new RegExp(`can read the upstream secret ${secretArn.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
    assert.match(warning, /broader than the agent needs/);
    assert.match(warning, /fix: give the agent the stack's role \(AgentRoleArn\)/);
  });

  it('names the missing grant of each denied step with the IAM fix filled in, and runs every step', async () => {
    const { code, out } = await doctor({ sqs: sqsDenied.endpoint, s3: s3Denied.endpoint, cloudwatch: cloudWatchDenied.endpoint });
    assert.equal(code, DOCTOR_EXIT.blocked, out);
    const queue = line(out, 'FAIL', 'queue');
    assert.match(queue, /AccessDenied/);
    assert.match(queue, new RegExp(`put-role-policy --role-name <AgentRoleArn role name> --policy-name SmarthostAgentQueue .*"sqs:SendMessage","sqs:GetQueueAttributes"\\],"Resource":"${sqs.queueArn}"`));
    assert.match(line(out, 'FAIL', 'bucket'), new RegExp(`"s3:PutObject"\\],"Resource":"arn:aws:s3:::${s3.bucket}/incoming/\\*".*customer-managed KMS key`));
    assert.match(line(out, 'FAIL', 'heartbeat'), new RegExp(`"cloudwatch:PutMetricData".*"cloudwatch:namespace":"${AGENT_METRICS_NAMESPACE}"`));
    assert.match(line(out, 'ok', 'secret'), /not readable/);
  });

  it('a wrong queue URL or bucket name, and an unreachable CloudWatch, each with its fix', async () => {
    const wrongQueue = sqs.queueUrl.replace(/[^/]+$/, 'smarthost-typo');
    const { code, out } = await doctor({ cloudwatch: UNREACHABLE_ENDPOINT }, { queueUrl: wrongQueue, bucket: 'smarthost-bodies-typo' });
    assert.equal(code, DOCTOR_EXIT.blocked, out);
    assert.match(line(out, 'FAIL', 'queue'), /fix: set queue\.sqs\.queueUrl to the stack's QueueUrl output \(aws sqs get-queue-url --queue-name smarthost-typo --region us-east-1\)/);
    assert.match(line(out, 'FAIL', 'bucket'), /NoSuchBucket.*\n.*fix: set queue\.sqs\.bucket to the stack's BucketName output/);
    assert.match(line(out, 'FAIL', 'heartbeat'), /fix: this machine does not reach 127\.0\.0\.1:9: allow outbound HTTPS/);
  });

  it('stops at once, with the fix, when the default chain finds no credentials', async () => {
    const { AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY } = process.env;
    delete process.env.AWS_ACCESS_KEY_ID;
    delete process.env.AWS_SECRET_ACCESS_KEY;
    try {
      const { code, out } = await doctor({});
      assert.equal(code, DOCTOR_EXIT.blocked, out);
      assert.match(line(out, 'FAIL', 'aws-creds'), /no AWS credentials found[^\n]*\n.*fix: give the agent the stack's role .*AWS_PROFILE=smarthost aws sts get-caller-identity/);
      assert.doesNotMatch(out, /queue {6}/);
    } finally {
      Object.assign(process.env, { AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY });
    }
  });
});
