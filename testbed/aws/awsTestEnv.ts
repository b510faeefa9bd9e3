import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * Region and credentials every stand-in client uses, and the environment that points the AWS
 * SDK's default chain of a child process (the agent, `smarthost worker`) at the stand-ins.
 */

export const TEST_REGION = 'us-east-1';

/**
 * Static fake credentials. s3rver knows only this key id (it does not check SigV4 signatures but
 * refuses unknown keys with InvalidAccessKeyId); local-aws-sqs, dynalite and the Secrets Manager
 * stand-in accept anything, so one pair serves all.
 */
export const TEST_CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } as const;

/**
 * Where services without a stand-in end up: a loopback port nothing listens on (discard), so a
 * forgotten client fails with ECONNREFUSED instead of reaching AWS.
 */
export const UNREACHABLE_ENDPOINT = 'http://127.0.0.1:9';

export interface AwsStandInEndpoints {
  sqs?: string;
  s3?: string;
  dynamodb?: string;
  secretsManager?: string;
  /** CloudWatch (the agent's heartbeat); UNREACHABLE_ENDPOINT when not given. */
  cloudwatch?: string;
}

/**
 * The variables the SDK v3 default chain reads, pointing at the given endpoints:
 * - `AWS_ENDPOINT_URL_<SERVICE ID>` (service id upper-cased, spaces → `_`), honoured by every
 *   client in @smithy/core's getEndpointFromConfig unless the client was given an `endpoint`;
 *   `AWS_ENDPOINT_URL` is the fallback for all other services, set here to an unreachable port.
 * - static credentials from `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY` (the chain's first
 *   source, so no profile, SSO, container or IMDS look-up happens), `AWS_EC2_METADATA_DISABLED`.
 * - no checksum settings: production's SDK defaults (the S3 stand-in decodes aws-chunked bodies).
 * - config and credentials files moved to a path that does not exist, so a developer's
 *   ~/.aws cannot add a profile, `services` section or `endpoint_url`.
 * S3 needs no path-style variable (there is none): for an endpoint whose host is an IP address
 * the S3 endpoint rules address the bucket in the path.
 */
export function awsTestEnv(endpoints: AwsStandInEndpoints): Record<string, string> {
  const missingFile = join(tmpdir(), 'smarthost-tests-no-aws-config', 'absent');
  const env: Record<string, string> = {
    AWS_REGION: TEST_REGION,
    AWS_ACCESS_KEY_ID: TEST_CREDENTIALS.accessKeyId,
    AWS_SECRET_ACCESS_KEY: TEST_CREDENTIALS.secretAccessKey,
    AWS_EC2_METADATA_DISABLED: 'true',
    AWS_CONFIG_FILE: missingFile,
    AWS_SHARED_CREDENTIALS_FILE: missingFile,
    AWS_ENDPOINT_URL: UNREACHABLE_ENDPOINT,
    AWS_ENDPOINT_URL_CLOUDWATCH: endpoints.cloudwatch ?? UNREACHABLE_ENDPOINT,
  };
  if (endpoints.sqs) env.AWS_ENDPOINT_URL_SQS = endpoints.sqs;
  if (endpoints.s3) env.AWS_ENDPOINT_URL_S3 = endpoints.s3;
  if (endpoints.dynamodb) env.AWS_ENDPOINT_URL_DYNAMODB = endpoints.dynamodb;
  if (endpoints.secretsManager) env.AWS_ENDPOINT_URL_SECRETS_MANAGER = endpoints.secretsManager;
  return env;
}

/**
 * A whole environment for a child process: `base` without any AWS_* variable of its own
 * (AWS_PROFILE, AWS_SESSION_TOKEN, a real AWS_ENDPOINT_URL...), plus `awsTestEnv(endpoints)`.
 */
export function childProcessEnv(endpoints: AwsStandInEndpoints, base: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(base)) {
    if (!name.startsWith('AWS_')) env[name] = value;
  }
  return { ...env, ...awsTestEnv(endpoints) };
}
