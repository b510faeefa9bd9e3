import { RemovalPolicy, Validations } from 'aws-cdk-lib';
import type { IKey } from 'aws-cdk-lib/aws-kms';
import { CfnSecret } from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';

export interface UpstreamSecretProps {
  /**
   * Customer-managed key for the secret value.
   * @default - the account's `aws/secretsmanager` key
   */
  readonly encryptionKey?: IKey;
  /** @default RemovalPolicy.DESTROY (deleted with the stack; a new stack gets a new, empty secret) */
  readonly removalPolicy?: RemovalPolicy;
}

/**
 * The Microsoft 365 credentials of the delivery function: a Secrets Manager secret holding the
 * JSON of the agent's `upstream` block. Created empty, so the value never appears in the
 * template, in cdk.out or in CloudFormation's history; the operator sets it after the deploy
 * (docs/deploy.md). Until then the function cannot fetch it and every delivery is retried.
 */
export class UpstreamSecret extends Construct {
  /** The L1 secret: the L2 `Secret` always adds a generated value, which this must not have. */
  public readonly resource: CfnSecret;
  /** Full ARN (with the random suffix): what the function reads and IAM policies name. */
  public readonly secretArn: string;
  public readonly encryptionKey: IKey | undefined;

  constructor(scope: Construct, id: string, props: UpstreamSecretProps = {}) {
    super(scope, id);
    this.encryptionKey = props.encryptionKey;
    // Neither SecretString nor GenerateSecretString: CloudFormation creates a secret with no value.
    this.resource = new CfnSecret(this, 'Resource', {
      description:
        'smarthost: Microsoft 365 upstream for the delivery function, the JSON of the agent config\'s "upstream" block. ' +
        'Set it with: aws secretsmanager put-secret-value --secret-id <this ARN> --secret-string file://upstream.json',
      kmsKeyId: props.encryptionKey?.keyArn,
    });
    this.resource.applyRemovalPolicy(props.removalPolicy ?? RemovalPolicy.DESTROY);
    this.secretArn = this.resource.ref;

    Validations.of(this.resource).acknowledge({
      id: 'AwsSolutions-SMG4',
      reason:
        'No Secrets Manager rotation: the value is a Microsoft Entra ID client secret or certificate (or an SMTP password) that ' +
        'only Entra ID / Microsoft 365 can issue, so a rotation Lambda has nothing to call. The operator renews it in Entra ID ' +
        'and puts the new value here; the function re-reads the secret after SMARTHOST_SECRET_TTL_SECONDS, no redeploy.',
    });
  }
}
