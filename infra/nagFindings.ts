import { Stack, type CfnElement } from 'aws-cdk-lib';
import type { IBucket } from 'aws-cdk-lib/aws-s3';

/**
 * The id cdk-nag 3 gives an AwsSolutions-IAM5 finding on a wildcard object ARN of a bucket in the
 * same stack, such as `AwsSolutions-IAM5[Resource::<BodyBucket1A2B3C.Arn>/incoming/*]`, so an
 * acknowledgement names exactly that resource and nothing broader.
 */
export function bucketObjectsFinding(bucket: IBucket, keyPattern: string): string {
  const resource = bucket.node.defaultChild as CfnElement;
  const logicalId = Stack.of(bucket).getLogicalId(resource);
  return `AwsSolutions-IAM5[Resource::<${logicalId}.Arn>/${keyPattern}]`;
}
