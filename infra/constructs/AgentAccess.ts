import { Duration, Stack, Validations } from 'aws-cdk-lib';
import {
  AccountRootPrincipal,
  ArnPrincipal,
  PolicyDocument,
  PolicyStatement,
  Role,
  ServicePrincipal,
  type Conditions,
  type IPrincipal,
} from 'aws-cdk-lib/aws-iam';
import type { IKey } from 'aws-cdk-lib/aws-kms';
import { CfnProfile, CfnTrustAnchor } from 'aws-cdk-lib/aws-rolesanywhere';
import { Construct } from 'constructs';
import { AGENT_METRICS_NAMESPACE } from '../../contract/cloudResources.ts';
import { bucketObjectsFinding } from '../nagFindings.ts';
import type { BodyBucket } from './BodyBucket.ts';
import type { MailQueue } from './MailQueue.ts';

const ROLES_ANYWHERE_SERVICE = 'rolesanywhere.amazonaws.com';

/** How the office agent gets credentials for the role. At most one of the ways may be given. */
export interface AgentTrust {
  /**
   * IAM Roles Anywhere with an existing trust anchor (the office's CA registered in this
   * account): the role trusts Roles Anywhere for certificates issued under that anchor only.
   * @default - none
   */
  readonly rolesAnywhereTrustAnchorArn?: string;
  /**
   * IAM Roles Anywhere with a trust anchor created here from this CA certificate (PEM).
   * @default - none
   */
  readonly rolesAnywhereCaCertificatePem?: string;
  /**
   * With Roles Anywhere: only a certificate whose subject CN is exactly this may assume the role.
   * @default - any certificate the trust anchor accepts
   */
  readonly certificateCommonName?: string;
  /**
   * Without Roles Anywhere: the one IAM principal (an IAM user with access keys, or a role) that
   * may assume the role. It must exist when the stack is deployed.
   * @default - any principal of this account whose own IAM policy allows sts:AssumeRole on the role
   */
  readonly principalArn?: string;
}

export interface AgentAccessProps {
  readonly mailQueue: MailQueue;
  readonly bodyBucket: BodyBucket;
  /** @default - account principals (see `AgentTrust.principalArn`) */
  readonly trust?: AgentTrust;
  /** @default Duration.hours(1) */
  readonly maxSessionDuration?: Duration;
}

/**
 * The role the office agent works with, allowed only what the agent does: send messages to the
 * mail queue, put bodies under `incoming/`, publish its heartbeat in its own metric namespace,
 * and use the queue's and bucket's key when they are customer-managed. It cannot read, delete or
 * list anything: stolen credentials leak no mail and cannot stop delivery (they can still put mail
 * in the queue, which is why docs/deploy.md recommends certificates over access keys).
 */
export class AgentAccess extends Construct {
  public readonly role: Role;
  /** Roles Anywhere profile naming the role (only with Roles Anywhere). */
  public readonly rolesAnywhereProfileArn: string | undefined;
  /** Roles Anywhere trust anchor: the one given or the one created here (only with Roles Anywhere). */
  public readonly rolesAnywhereTrustAnchorArn: string | undefined;

  constructor(scope: Construct, id: string, props: AgentAccessProps) {
    super(scope, id);
    const { mailQueue, bodyBucket } = props;
    const trust = props.trust ?? {};
    checkTrust(trust);
    const { region, stackName } = Stack.of(this);

    if (trust.rolesAnywhereCaCertificatePem) {
      const trustAnchor = new CfnTrustAnchor(this, 'TrustAnchor', {
        name: `${stackName}-office`,
        enabled: true,
        source: { sourceType: 'CERTIFICATE_BUNDLE', sourceData: { x509CertificateData: trust.rolesAnywhereCaCertificatePem } },
      });
      this.rolesAnywhereTrustAnchorArn = trustAnchor.attrTrustAnchorArn;
    } else {
      this.rolesAnywhereTrustAnchorArn = trust.rolesAnywhereTrustAnchorArn;
    }

    let principal: IPrincipal;
    if (this.rolesAnywhereTrustAnchorArn) {
      principal = new RolesAnywherePrincipal({
        ArnEquals: { 'aws:SourceArn': this.rolesAnywhereTrustAnchorArn },
        ...(trust.certificateCommonName ? { StringEquals: { 'aws:PrincipalTag/x509Subject/CN': trust.certificateCommonName } } : {}),
      });
    } else if (trust.principalArn) {
      principal = new ArnPrincipal(trust.principalArn);
    } else {
      principal = new AccountRootPrincipal();
    }

    const statements = [
      new PolicyStatement({
        sid: 'SendMail',
        // GetQueueAttributes: the forwarder reads MaximumMessageSize to know what travels inline.
        actions: ['sqs:SendMessage', 'sqs:GetQueueAttributes'],
        resources: [mailQueue.queue.queueArn],
      }),
      new PolicyStatement({
        sid: 'UploadLargeBodies',
        actions: ['s3:PutObject'],
        resources: [bodyBucket.bucket.arnForObjects(`${bodyBucket.prefix}*`)],
      }),
      new PolicyStatement({
        sid: 'PublishHeartbeat',
        actions: ['cloudwatch:PutMetricData'],
        resources: ['*'],
        conditions: { StringEquals: { 'cloudwatch:namespace': AGENT_METRICS_NAMESPACE } },
      }),
    ];
    const keys = [...new Set([mailQueue.encryptionKey, bodyBucket.encryptionKey].filter((key): key is IKey => key !== undefined))];
    if (keys.length > 0) {
      statements.push(
        new PolicyStatement({
          sid: 'EncryptWithDataKey',
          // SQS needs both from a producer on a KMS-encrypted queue; S3 needs Decrypt too for the
          // parts of a multipart upload. Only through SQS and S3: the agent cannot decrypt directly.
          actions: ['kms:GenerateDataKey', 'kms:Decrypt'],
          resources: keys.map((key) => key.keyArn),
          conditions: {
            StringEquals: { 'kms:ViaService': [`sqs.${region}.amazonaws.com`, `s3.${region}.amazonaws.com`] },
          },
        }),
      );
    }

    this.role = new Role(this, 'Role', {
      assumedBy: principal,
      description: 'smarthost office agent: send mail to the queue, upload large bodies, publish its heartbeat',
      maxSessionDuration: props.maxSessionDuration ?? Duration.hours(1),
      inlinePolicies: { Agent: new PolicyDocument({ statements }) },
    });

    if (this.rolesAnywhereTrustAnchorArn) {
      const profile = new CfnProfile(this, 'RolesAnywhereProfile', {
        name: `${stackName}-agent`,
        enabled: true,
        roleArns: [this.role.roleArn],
        durationSeconds: 3600,
      });
      this.rolesAnywhereProfileArn = profile.attrProfileArn;
    }

    Validations.of(this.role).acknowledge(
      {
        id: bucketObjectsFinding(bodyBucket.bucket, `${bodyBucket.prefix}*`),
        reason:
          'Object-level wildcard under incoming/ only, with s3:PutObject alone: each large body gets its own key ' +
          '(incoming/<date>/<message id>.eml) chosen by the agent at upload time; nothing can be read, listed or deleted.',
      },
      {
        id: 'AwsSolutions-IAM5[Resource::*]',
        reason:
          'cloudwatch:PutMetricData supports no resource-level permissions; the cloudwatch:namespace condition limits it to ' +
          `the agent's own namespace (${AGENT_METRICS_NAMESPACE}), so the agent cannot forge the delivery metrics alarms watch.`,
      },
    );
  }
}

/** Roles Anywhere needs to tag the session and set its source identity besides assuming the role. */
class RolesAnywherePrincipal extends ServicePrincipal {
  constructor(private readonly trustConditions: Conditions) {
    super(ROLES_ANYWHERE_SERVICE);
  }

  override addToAssumeRolePolicy(document: PolicyDocument): void {
    document.addStatements(
      new PolicyStatement({
        actions: ['sts:AssumeRole', 'sts:TagSession', 'sts:SetSourceIdentity'],
        principals: [new ServicePrincipal(ROLES_ANYWHERE_SERVICE)],
        conditions: this.trustConditions,
      }),
    );
  }
}

function checkTrust(trust: AgentTrust): void {
  const problems: string[] = [];
  if (trust.rolesAnywhereTrustAnchorArn && trust.rolesAnywhereCaCertificatePem) {
    problems.push('give either a Roles Anywhere trust anchor ARN or a CA certificate to create one, not both');
  }
  const rolesAnywhere = Boolean(trust.rolesAnywhereTrustAnchorArn || trust.rolesAnywhereCaCertificatePem);
  if (rolesAnywhere && trust.principalArn) {
    problems.push('principalArn cannot be combined with Roles Anywhere (the role trusts Roles Anywhere only)');
  }
  if (trust.certificateCommonName && !rolesAnywhere) {
    problems.push('certificateCommonName needs Roles Anywhere (a trust anchor ARN or a CA certificate)');
  }
  if (problems.length > 0) {
    throw new Error(`AgentAccess: ${problems.join('; ')}`);
  }
}
