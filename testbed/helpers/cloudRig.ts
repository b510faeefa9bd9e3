import { startLocalDynamo, type LocalDynamo } from '../aws/localDynamo.ts';
import { startLocalS3, type LocalS3 } from '../aws/localS3.ts';
import { startLocalSecretsManager, type LocalSecretsManager } from '../aws/localSecretsManager.ts';
import { startLocalSqs, type LocalSqs } from '../aws/localSqs.ts';
import { startExchangeOnlineRig, type ExchangeOnlineRig } from './exchangeOnlineRig.ts';

/** The fake Exchange Online and the AWS stand-ins the cloud runtime delivers through, with the upstream secret in place. */
export interface CloudRig {
  rig: ExchangeOnlineRig;
  sqs: LocalSqs;
  s3: LocalS3;
  dynamo: LocalDynamo;
  secrets: LocalSecretsManager;
  /** The secret holding the fake's upstream block (what the stack's secret holds). */
  secretArn: string;
  stop(): Promise<void>;
}

/**
 * What every test of the Lambda, the worker or the whole cloud path starts first. `exchange`: the
 * fake tenant's options; `secret`: what the upstream secret holds (default: the fake's upstream block).
 */
export async function startCloudRig(options: { exchange?: Parameters<typeof startExchangeOnlineRig>[0]; secret?: (rig: ExchangeOnlineRig) => unknown } = {}): Promise<CloudRig> {
  const [rig, sqs, s3, dynamo, secrets] = await Promise.all([
    startExchangeOnlineRig(options.exchange),
    startLocalSqs({ visibilityTimeout: 30, maxReceiveCount: 10 }),
    startLocalS3(),
    startLocalDynamo(),
    startLocalSecretsManager(),
  ]);
  const { arn: secretArn } = secrets.setSecret('smarthost-upstream', JSON.stringify(options.secret ? options.secret(rig) : rig.upstream()));
  return {
    rig,
    sqs,
    s3,
    dynamo,
    secrets,
    secretArn,
    async stop() {
      await Promise.all([rig.close(), sqs.stop(), s3.stop(), dynamo.stop(), secrets.stop()]);
    },
  };
}
