import { AGENT_METRICS_NAMESPACE } from '../../contract/cloudResources.ts';

/**
 * The fixes `smarthost doctor` names when the agent's AWS identity lacks a permission: the same
 * statements infra/constructs/AgentAccess.ts gives the stack's agent role, as an aws CLI step with
 * the values filled in. The role's name is the last part of the stack's AgentRoleArn output.
 */

export const AGENT_ROLE_PLACEHOLDER = '<AgentRoleArn role name>';

/** arn:aws:sqs:REGION:ACCOUNT:NAME from https://sqs.REGION.amazonaws.com/ACCOUNT/NAME, when it has that shape. */
export function queueArnOf(queueUrl: string, region: string | undefined): string {
  const url = new URL(queueUrl);
  const [account, name] = url.pathname.split('/').filter(Boolean);
  const urlRegion = /^sqs\.([a-z0-9-]+)\.amazonaws\.com/.exec(url.hostname)?.[1];
  return `arn:aws:sqs:${urlRegion ?? region ?? '<region>'}:${account ?? '<account>'}:${name ?? '<queue>'}`;
}

export interface PolicyStatement {
  Effect: 'Allow';
  Action: string[];
  Resource: string;
  Condition?: Record<string, Record<string, string>>;
}

export function queueStatement(queueArn: string): PolicyStatement {
  return { Effect: 'Allow', Action: ['sqs:SendMessage', 'sqs:GetQueueAttributes'], Resource: queueArn };
}

export function bucketStatement(bucket: string, prefix: string): PolicyStatement {
  return { Effect: 'Allow', Action: ['s3:PutObject'], Resource: `arn:aws:s3:::${bucket}/${prefix}*` };
}

export function heartbeatStatement(): PolicyStatement {
  return { Effect: 'Allow', Action: ['cloudwatch:PutMetricData'], Resource: '*', Condition: { StringEquals: { 'cloudwatch:namespace': AGENT_METRICS_NAMESPACE } } };
}

/** The aws CLI step that adds one statement to the agent role as an inline policy. */
export function grantStep(policyName: string, statement: PolicyStatement): string {
  const document = JSON.stringify({ Version: '2012-10-17', Statement: [statement] });
  return (
    `the agent's identity needs ${statement.Action.join(' and ')} on ${statement.Resource}; with the stack's role (AgentRoleArn) as the agent's credentials it has it (docs/deploy.md), ` +
    `or add it: aws iam put-role-policy --role-name ${AGENT_ROLE_PLACEHOLDER} --policy-name ${policyName} --policy-document '${document}'`
  );
}
