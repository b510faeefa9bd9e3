import { Duration, RemovalPolicy, Validations } from 'aws-cdk-lib';
import type { IKey } from 'aws-cdk-lib/aws-kms';
import { BlockPublicAccess, Bucket, BucketEncryption, ObjectOwnership } from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import { INCOMING_PREFIX } from '../../contract/cloudResources.ts';

export interface BodyBucketProps {
  /**
   * Bodies still under the incoming prefix this long after upload are deleted. The function
   * deletes a body once its message is delivered and keeps it when delivery failed, so what
   * remains is failed mail (kept for redrive) and uploads whose SQS message never got sent.
   * Keep it above the queue's 14-day retention, or a redriven message may find its body gone.
   * @default Duration.days(30)
   */
  readonly leftoverExpiry?: Duration;
  /**
   * Multipart uploads the agent did not complete (connection lost mid-scan) are removed after this.
   * @default Duration.days(1)
   */
  readonly abortIncompleteUploadsAfter?: Duration;
  /**
   * Customer-managed key (SSE-KMS with an S3 bucket key).
   * @default - SSE-S3: encrypted at rest with S3-managed keys, no KMS permissions needed
   */
  readonly encryptionKey?: IKey;
  /** @default RemovalPolicy.RETAIN (the bodies of failed mail survive the stack) */
  readonly removalPolicy?: RemovalPolicy;
}

/**
 * Where the agent puts message bodies too large for an SQS message, under `incoming/`. Private,
 * encrypted, TLS only, and self-cleaning: nothing is meant to stay here.
 */
export class BodyBucket extends Construct {
  public readonly bucket: Bucket;
  /** The key prefix bodies go under (the same constant the agent and the function use). */
  public readonly prefix: string = INCOMING_PREFIX;
  public readonly encryptionKey: IKey | undefined;

  constructor(scope: Construct, id: string, props: BodyBucketProps = {}) {
    super(scope, id);
    this.encryptionKey = props.encryptionKey;
    const leftoverExpiry = props.leftoverExpiry ?? Duration.days(30);
    if (leftoverExpiry.toDays() <= 14) {
      throw new RangeError(`BodyBucket leftoverExpiry must be longer than the queue's 14-day retention, got ${leftoverExpiry.toDays()} days`);
    }
    const encryption = props.encryptionKey
      ? { encryption: BucketEncryption.KMS, encryptionKey: props.encryptionKey, bucketKeyEnabled: true }
      : { encryption: BucketEncryption.S3_MANAGED };

    this.bucket = new Bucket(this, 'Bucket', {
      ...encryption,
      blockPublicAccess: BlockPublicAccess.BLOCK_ALL,
      objectOwnership: ObjectOwnership.BUCKET_OWNER_ENFORCED,
      enforceSSL: true,
      minimumTLSVersion: 1.2,
      versioned: false,
      lifecycleRules: [
        {
          id: 'expire-leftover-bodies',
          prefix: INCOMING_PREFIX,
          expiration: leftoverExpiry,
          abortIncompleteMultipartUploadAfter: props.abortIncompleteUploadsAfter ?? Duration.days(1),
        },
      ],
      removalPolicy: props.removalPolicy ?? RemovalPolicy.RETAIN,
    });

    Validations.of(this.bucket).acknowledge({
      id: 'AwsSolutions-S1',
      reason:
        'No server access logs: objects are transient mail bodies written only by the agent role and read/deleted only by the ' +
        'delivery function (both defined here); CloudTrail records who assumed those roles, and a separate log bucket would cost ' +
        'more than the data it watches in a small office. Enable CloudTrail S3 data events account-wide if an audit needs them.',
    });
  }
}
