import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { App, Duration, Stack } from 'aws-cdk-lib';
import { AGENT_METRICS_NAMESPACE } from '../../contract/cloudResources.ts';
import { AgentAccess } from '../../infra/constructs/AgentAccess.ts';
import { BodyBucket } from '../../infra/constructs/BodyBucket.ts';
import { MailQueue } from '../../infra/constructs/MailQueue.ts';
import { getAtt, logicalIdOf, objectsUnder, synthSmarthost, type SynthResult } from './helpers/synthStack.ts';
import { tempFile } from './helpers/tempDir.ts';

const TRUST_ANCHOR_ARN = 'arn:aws:rolesanywhere:eu-west-1:123456789012:trust-anchor/0f1e2d3c-4b5a-6978-8695-a4b3c2d1e0f9';
const CA_PEM = '-----BEGIN CERTIFICATE-----\nMIIBofficeCA\n-----END CERTIFICATE-----\n';
const caFile = tempFile('ca', 'office-ca.pem');
writeFileSync(caFile, CA_PEM);

const plain = synthSmarthost();

function role(result: SynthResult): Record<string, any> {
  return result.template.toJSON().Resources[logicalIdOf(result.stack, result.stack.agentAccess.role)].Properties;
}

function expectedAgentStatements(result: SynthResult): unknown[] {
  const { stack } = result;
  const statements: unknown[] = [
    { Sid: 'SendMail', Effect: 'Allow', Action: ['sqs:GetQueueAttributes', 'sqs:SendMessage'], Resource: getAtt(logicalIdOf(stack, stack.mailQueue.queue)) },
    { Sid: 'UploadLargeBodies', Effect: 'Allow', Action: 's3:PutObject', Resource: objectsUnder(logicalIdOf(stack, stack.bodyBucket.bucket), 'incoming/*') },
    {
      Sid: 'PublishHeartbeat',
      Effect: 'Allow',
      Action: 'cloudwatch:PutMetricData',
      Resource: '*',
      Condition: { StringEquals: { 'cloudwatch:namespace': AGENT_METRICS_NAMESPACE } },
    },
  ];
  if (stack.dataKey) {
    statements.push({
      Sid: 'EncryptWithDataKey',
      Effect: 'Allow',
      Action: ['kms:Decrypt', 'kms:GenerateDataKey'],
      Resource: getAtt(logicalIdOf(stack, stack.dataKey)),
      Condition: { StringEquals: { 'kms:ViaService': ['sqs.eu-west-1.amazonaws.com', 's3.eu-west-1.amazonaws.com'] } },
    });
  }
  return statements;
}

describe('AgentAccess role permissions', () => {
  it('may only send to the queue, put objects under incoming/ and publish in its own metric namespace', () => {
    const properties = role(plain);
    assert.equal(properties.Policies.length, 1);
    assert.deepEqual(properties.Policies[0].PolicyDocument.Statement, expectedAgentStatements(plain));
    assert.equal(properties.ManagedPolicyArns, undefined);
    assert.equal(properties.MaxSessionDuration, 3600);
  });

  it('with a customer-managed key, may also use that key, through SQS and S3 only', () => {
    const withKey = synthSmarthost({ customerManagedKey: true });
    assert.deepEqual(role(withKey).Policies[0].PolicyDocument.Statement, expectedAgentStatements(withKey));
  });
});

describe('AgentAccess trust', () => {
  it('by default trusts the account: principals whose own policy allows sts:AssumeRole on it', () => {
    assert.deepEqual(role(plain).AssumeRolePolicyDocument.Statement, [
      {
        Action: 'sts:AssumeRole',
        Effect: 'Allow',
        // The fallback account in tests; `cdk deploy` puts the real one here.
        Principal: { AWS: 'arn:aws:iam::123456789012:root' },
      },
    ]);
    plain.template.resourceCountIs('AWS::RolesAnywhere::Profile', 0);
    plain.template.resourceCountIs('AWS::RolesAnywhere::TrustAnchor', 0);
  });

  it('with agentPrincipalArn trusts that one user or role only', () => {
    const result = synthSmarthost({ agentPrincipalArn: 'arn:aws:iam::123456789012:user/smarthost-agent' });
    assert.deepEqual(role(result).AssumeRolePolicyDocument.Statement, [
      { Action: 'sts:AssumeRole', Effect: 'Allow', Principal: { AWS: 'arn:aws:iam::123456789012:user/smarthost-agent' } },
    ]);
  });

  it('with an existing trust anchor trusts Roles Anywhere for that anchor and certificate CN, and gets a profile', () => {
    const result = synthSmarthost({ rolesAnywhereTrustAnchorArn: TRUST_ANCHOR_ARN, agentCertificateCn: 'office-box' });
    assert.deepEqual(role(result).AssumeRolePolicyDocument.Statement, [
      {
        Action: ['sts:AssumeRole', 'sts:SetSourceIdentity', 'sts:TagSession'],
        Effect: 'Allow',
        Principal: { Service: 'rolesanywhere.amazonaws.com' },
        Condition: {
          ArnEquals: { 'aws:SourceArn': TRUST_ANCHOR_ARN },
          StringEquals: { 'aws:PrincipalTag/x509Subject/CN': 'office-box' },
        },
      },
    ]);
    const roleId = logicalIdOf(result.stack, result.stack.agentAccess.role);
    result.template.hasResourceProperties('AWS::RolesAnywhere::Profile', {
      Name: 'Smarthost-agent',
      Enabled: true,
      RoleArns: [getAtt(roleId)],
      DurationSeconds: 3600,
    });
    result.template.resourceCountIs('AWS::RolesAnywhere::TrustAnchor', 0);
    const outputs = result.template.toJSON().Outputs;
    assert.equal(outputs.RolesAnywhereTrustAnchorArn.Value, TRUST_ANCHOR_ARN);
    assert.ok(outputs.RolesAnywhereProfileArn.Value['Fn::GetAtt']);
  });

  it('with agentCaCertificateFile creates the trust anchor from that CA and trusts certificates under it', () => {
    const result = synthSmarthost({ agentCaCertificateFile: caFile });
    result.template.hasResourceProperties('AWS::RolesAnywhere::TrustAnchor', {
      Name: 'Smarthost-office',
      Enabled: true,
      Source: { SourceType: 'CERTIFICATE_BUNDLE', SourceData: { X509CertificateData: CA_PEM } },
    });
    const anchorId = Object.keys(result.template.findResources('AWS::RolesAnywhere::TrustAnchor'))[0] ?? assert.fail('no trust anchor');
    assert.deepEqual(role(result).AssumeRolePolicyDocument.Statement, [
      {
        Action: ['sts:AssumeRole', 'sts:SetSourceIdentity', 'sts:TagSession'],
        Effect: 'Allow',
        Principal: { Service: 'rolesanywhere.amazonaws.com' },
        Condition: { ArnEquals: { 'aws:SourceArn': getAtt(anchorId, 'TrustAnchorArn') } },
      },
    ]);
  });

  it('refuses trust settings that contradict each other, naming every problem', () => {
    const stack = new Stack(new App(), 'Check');
    const mailQueue = new MailQueue(stack, 'Mail', { visibilityTimeout: Duration.minutes(30) });
    const bodyBucket = new BodyBucket(stack, 'Bodies');
    assert.throws(
      () =>
        new AgentAccess(stack, 'Agent', {
          mailQueue,
          bodyBucket,
          trust: { rolesAnywhereTrustAnchorArn: TRUST_ANCHOR_ARN, rolesAnywhereCaCertificatePem: CA_PEM, principalArn: 'arn:aws:iam::123456789012:user/x' },
        }),
      {
        message:
          'AgentAccess: give either a Roles Anywhere trust anchor ARN or a CA certificate to create one, not both; ' +
          'principalArn cannot be combined with Roles Anywhere (the role trusts Roles Anywhere only)',
      },
    );
    assert.throws(() => new AgentAccess(stack, 'Agent2', { mailQueue, bodyBucket, trust: { certificateCommonName: 'office-box' } }), {
      message: 'AgentAccess: certificateCommonName needs Roles Anywhere (a trust anchor ARN or a CA certificate)',
    });
  });
});
