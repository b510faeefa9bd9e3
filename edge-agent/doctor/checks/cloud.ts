import { CloudWatchClient, PutMetricDataCommand } from '@aws-sdk/client-cloudwatch';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { GetQueueAttributesCommand, SQSClient } from '@aws-sdk/client-sqs';
import { AGENT_METRICS, AGENT_METRICS_NAMESPACE } from '../../../contract/cloudResources.ts';
import type { SqsQueueConfig } from '../../config/agentConfigSchema.ts';
import { bucketStatement, grantStep, heartbeatStatement, queueArnOf, queueStatement } from '../agentAccessFixes.ts';
import { describeCredentialSource, type ResolvedCredentials } from '../awsCredentialSource.ts';
import type { DoctorReport } from '../report.ts';

/** Where the cloud checks send their requests; absent: the SDK's defaults (AWS_ENDPOINT_URL_*, the region's endpoints). */
export interface CloudDoctorEndpoints {
  sqs?: string;
  s3?: string;
  cloudwatch?: string;
  secretsManager?: string;
}

/**
 * The probe object: a fixed key under the agent's prefix, so repeated runs overwrite one small
 * object, which the bucket's lifecycle rule for that prefix removes (the agent may not delete).
 */
export const BUCKET_PROBE_NAME = 'smarthost-doctor-probe.txt';
const BUCKET_PROBE_BODY = 'written by smarthost doctor to test the agent may upload large bodies; the bucket lifecycle rule removes it\n';

/** A doctor that hangs on a blocked network tells nothing: short timeouts, one retry. */
const CLIENT_TUNING = { maxAttempts: 2, requestHandler: { connectionTimeout: 5_000, requestTimeout: 15_000 } } as const;

interface AwsError {
  name?: string;
  message?: string;
  code?: string;
  $metadata?: { httpStatusCode?: number };
}

type Failure = 'denied' | 'credentials' | 'network' | 'region' | 'other';

const CREDENTIAL_ERRORS = new Set(['InvalidClientTokenId', 'UnrecognizedClientException', 'SignatureDoesNotMatch', 'ExpiredToken', 'ExpiredTokenException', 'InvalidAccessKeyId', 'InvalidSignatureException']);
const NETWORK_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'ETIMEDOUT', 'ECONNRESET', 'EHOSTUNREACH', 'ENETUNREACH']);

function classify(error: AwsError): Failure {
  const name = error.name ?? '';
  if (CREDENTIAL_ERRORS.has(name)) return 'credentials';
  if (/AccessDenied|AuthorizationError|Forbidden/i.test(name) || error.$metadata?.httpStatusCode === 403) return 'denied';
  if (NETWORK_CODES.has(error.code ?? '') || name === 'TimeoutError' || /ECONNREFUSED|ENOTFOUND|ETIMEDOUT|socket hang up/.test(error.message ?? '')) return 'network';
  if (/region is missing/i.test(error.message ?? '')) return 'region';
  return 'other';
}

function summary(error: AwsError): string {
  return `${error.name ?? 'Error'}${error.code && error.code !== error.name ? ` ${error.code}` : ''}: ${(error.message ?? '').slice(0, 200)}`;
}

/** The host a client talks to: the endpoint given, else the service's regional one on port 443. */
function hostOf(endpoint: string | undefined, service: string, region: string | undefined): string {
  return endpoint ? new URL(endpoint).host : `${service}.${region ?? '<region>'}.amazonaws.com on port 443`;
}

/** The fix every step shares for the failures that are not about its own permission. */
function commonFix(failure: Failure, host: string): string | undefined {
  switch (failure) {
    case 'credentials':
      return "the credentials were refused (wrong, expired or deleted keys, or a clock off by minutes): renew them as docs/deploy.md describes and check with `aws sts get-caller-identity` run as the agent's user";
    case 'network':
      return `this machine does not reach ${host}: allow outbound HTTPS to it (firewall, proxy: HTTPS_PROXY)`;
    case 'region':
      return "set queue.sqs.region (the region in the queue's URL, e.g. eu-west-1) or AWS_REGION";
    default:
      return undefined;
  }
}

/**
 * Cloud mode: the agent's AWS identity, tested with only what the stack's agent role allows
 * (infra/constructs/AgentAccess.ts): the queue, an upload under the prefix, the heartbeat, and
 * that the upstream secret is out of its reach. A missing permission is a failure and the
 * remaining steps still run, so one run names every missing grant.
 */
export async function checkCloud(report: DoctorReport, sqsConfig: SqsQueueConfig, secretArn: string | undefined, endpoints: CloudDoctorEndpoints = {}): Promise<void> {
  const region = sqsConfig.region;
  const base = { ...(region ? { region } : {}), ...CLIENT_TUNING };
  const sqs = new SQSClient({ ...base, ...(endpoints.sqs ? { endpoint: endpoints.sqs } : {}) });
  const s3 = new S3Client({ ...base, ...(endpoints.s3 ? { endpoint: endpoints.s3 } : {}) });
  const cloudWatch = new CloudWatchClient({ ...base, ...(endpoints.cloudwatch ? { endpoint: endpoints.cloudwatch } : {}) });
  const secrets = new SecretsManagerClient({ ...base, ...(endpoints.secretsManager ? { endpoint: endpoints.secretsManager } : {}) });
  try {
    await checkCredentials(report, sqs);
    await checkQueue(report, sqs, sqsConfig, endpoints.sqs);
    await checkBucket(report, s3, sqsConfig, endpoints.s3);
    await checkHeartbeat(report, cloudWatch, region, endpoints.cloudwatch);
    await checkSecretOutOfReach(report, secrets, secretArn, region, endpoints.secretsManager);
  } finally {
    for (const client of [sqs, s3, cloudWatch, secrets]) client.destroy();
  }
}

async function checkCredentials(report: DoctorReport, sqs: SQSClient): Promise<void> {
  let credentials: ResolvedCredentials;
  try {
    credentials = (await sqs.config.credentials()) as ResolvedCredentials;
  } catch (error) {
    report.fail(
      'aws-creds',
      `no AWS credentials found by the SDK's default chain (environment, AWS_PROFILE and its config file, credential_process, container, instance): ${(error as Error).message.slice(0, 160)}`,
      "give the agent the stack's role as docs/deploy.md describes (IAM Roles Anywhere: a profile with credential_process = aws_signing_helper ...; or role_arn + source_profile), set AWS_PROFILE=smarthost (and AWS_CONFIG_FILE) in /etc/smarthost/smarthost.env, and check with `AWS_PROFILE=smarthost aws sts get-caller-identity` run as the agent's user",
    );
  }
  report.ok('aws-creds', `found: ${describeCredentialSource(credentials, process.env.AWS_PROFILE)}`);
}

async function checkQueue(report: DoctorReport, sqs: SQSClient, sqsConfig: SqsQueueConfig, endpoint: string | undefined): Promise<void> {
  const queueArn = queueArnOf(sqsConfig.queueUrl, sqsConfig.region);
  let maxMessageBytes: number;
  try {
    const response = await sqs.send(new GetQueueAttributesCommand({ QueueUrl: sqsConfig.queueUrl, AttributeNames: ['MaximumMessageSize'] }));
    maxMessageBytes = Number(response.Attributes?.MaximumMessageSize);
  } catch (error) {
    const failure = classify(error as AwsError);
    const name = (error as AwsError).name ?? '';
    let fix = commonFix(failure, hostOf(endpoint, 'sqs', sqsConfig.region));
    if (failure === 'denied') fix = grantStep('SmarthostAgentQueue', queueStatement(queueArn));
    else if (/QueueDoesNotExist|NonExistentQueue/.test(name)) {
      fix = `set queue.sqs.queueUrl to the stack's QueueUrl output (aws sqs get-queue-url --queue-name ${queueArn.split(':').pop() ?? '<queue>'} --region ${queueArn.split(':')[3] ?? '<region>'})`;
    }
    report.add({ step: 'queue', status: 'fail', detail: `${sqsConfig.queueUrl} not reachable: ${summary(error as AwsError)}`, ...(fix ? { fix } : {}) });
    return;
  }
  report.ok('queue', `${sqsConfig.queueUrl} reachable (sqs:GetQueueAttributes; MaximumMessageSize ${Number.isFinite(maxMessageBytes) ? `${maxMessageBytes} bytes` : 'not told'})`);
  // The same rule the forwarder applies: a body travels inline as base64.
  if (Number.isFinite(maxMessageBytes) && Math.ceil(sqsConfig.inlineMaxBytes / 3) * 4 > maxMessageBytes) {
    report.warn(
      'queue',
      `queue.sqs.inlineMaxBytes (${sqsConfig.inlineMaxBytes} bytes) is more than the queue takes inline after base64: the largest of those bodies go by S3`,
      `lower queue.sqs.inlineMaxBytes to ${Math.floor((maxMessageBytes * 3) / 4 / 1024) - 4}KB, or raise the queue's limit: aws sqs set-queue-attributes --queue-url ${sqsConfig.queueUrl} --attributes MaximumMessageSize=1048576`,
    );
  }
}

async function checkBucket(report: DoctorReport, s3: S3Client, sqsConfig: SqsQueueConfig, endpoint: string | undefined): Promise<void> {
  const key = `${sqsConfig.prefix}${BUCKET_PROBE_NAME}`;
  try {
    await s3.send(new PutObjectCommand({ Bucket: sqsConfig.bucket, Key: key, Body: BUCKET_PROBE_BODY, ContentType: 'text/plain' }));
  } catch (error) {
    const failure = classify(error as AwsError);
    const name = (error as AwsError).name ?? '';
    let fix = commonFix(failure, hostOf(endpoint, 's3', sqsConfig.region));
    if (failure === 'denied') {
      fix = `${grantStep('SmarthostAgentBodies', bucketStatement(sqsConfig.bucket, sqsConfig.prefix))}; with a customer-managed KMS key on the bucket also kms:GenerateDataKey and kms:Decrypt on that key`;
    } else if (name === 'NoSuchBucket') {
      fix = "set queue.sqs.bucket to the stack's BucketName output (aws cloudformation describe-stacks --query \"Stacks[0].Outputs[?OutputKey=='BucketName'].OutputValue\" --output text)";
    }
    report.add({ step: 'bucket', status: 'fail', detail: `could not upload to s3://${sqsConfig.bucket}/${key}: ${summary(error as AwsError)} (bodies over queue.sqs.inlineMaxBytes cannot be handed over)`, ...(fix ? { fix } : {}) });
    return;
  }
  report.ok('bucket', `s3://${sqsConfig.bucket}/${key} written (s3:PutObject under ${sqsConfig.prefix}; the bucket's lifecycle rule removes it)`);
}

async function checkHeartbeat(report: DoctorReport, cloudWatch: CloudWatchClient, region: string | undefined, endpoint: string | undefined): Promise<void> {
  try {
    await cloudWatch.send(new PutMetricDataCommand({ Namespace: AGENT_METRICS_NAMESPACE, MetricData: [{ MetricName: AGENT_METRICS.heartbeat, Value: 1, Unit: 'Count' }] }));
  } catch (error) {
    const failure = classify(error as AwsError);
    const fix = failure === 'denied' ? grantStep('SmarthostAgentHeartbeat', heartbeatStatement()) : commonFix(failure, hostOf(endpoint, 'monitoring', region));
    report.add({
      step: 'heartbeat',
      status: 'fail',
      detail: `${AGENT_METRICS_NAMESPACE}/${AGENT_METRICS.heartbeat} not accepted: ${summary(error as AwsError)} (the stack's missing-heartbeat alarm would fire)`,
      ...(fix ? { fix } : {}),
    });
    return;
  }
  report.ok('heartbeat', `${AGENT_METRICS_NAMESPACE}/${AGENT_METRICS.heartbeat} accepted (cloudwatch:PutMetricData)`);
}

async function checkSecretOutOfReach(report: DoctorReport, secrets: SecretsManagerClient, secretArn: string | undefined, region: string | undefined, endpoint: string | undefined): Promise<void> {
  if (!secretArn) {
    report.info('secret', "not checked that the agent cannot read the upstream secret: pass --secret-arn with the stack's SecretArn output");
    return;
  }
  try {
    // Only the outcome is looked at: the value is never printed or kept.
    await secrets.send(new GetSecretValueCommand({ SecretId: secretArn }));
  } catch (error) {
    const failure = classify(error as AwsError);
    if (failure === 'denied') {
      report.ok('secret', `${secretArn} is not readable by the agent (AccessDenied), as intended: only the delivery function reads it`);
      return;
    }
    if ((error as AwsError).name !== 'ResourceNotFoundException') {
      report.warn('secret', `could not test whether the agent can read ${secretArn}: ${summary(error as AwsError)}`, commonFix(failure, hostOf(endpoint, 'secretsmanager', region)));
      return;
    }
    // Not found is only answered to a caller allowed to read it: the permission is there.
  }
  report.warn(
    'secret',
    `the agent's credentials can read the upstream secret ${secretArn} (secretsmanager:GetSecretValue allowed): they are broader than the agent needs, and a stolen office box would give away the Microsoft 365 credentials`,
    "give the agent the stack's role (AgentRoleArn), which has no Secrets Manager access, or remove secretsmanager:GetSecretValue on it from the policies of the identity shown by `aws sts get-caller-identity` (aws iam list-attached-role-policies / list-attached-user-policies)",
  );
}
