import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { acknowledgementsIn, pathsByLogicalId, rawAwsSolutionsFindings } from './helpers/nagFindings.ts';
import { logicalIdOf, synthSmarthost } from './helpers/synthStack.ts';
import { tempFile } from './helpers/tempDir.ts';

const caFile = tempFile('ca', 'office-ca.pem');
writeFileSync(caFile, '-----BEGIN CERTIFICATE-----\nMIIBfake\n-----END CERTIFICATE-----\n');

const VARIANTS: Record<string, Record<string, unknown>> = {
  'the default stack': {},
  'customer-managed key, Roles Anywhere from a CA file, alarm email, failure notices': {
    customerManagedKey: 'true',
    agentCaCertificateFile: caFile,
    agentCertificateCn: 'office-box',
    alarmEmail: 'ops@contoso.com',
    failureNoticeTo: 'postmaster@contoso.com',
  },
  'an existing Roles Anywhere trust anchor': {
    rolesAnywhereTrustAnchorArn: 'arn:aws:rolesanywhere:eu-west-1:123456789012:trust-anchor/0f1e2d3c-4b5a-6978-8695-a4b3c2d1e0f9',
  },
  'an explicit agent principal': { agentPrincipalArn: 'arn:aws:iam::123456789012:user/smarthost-agent' },
};

describe('cdk-nag AwsSolutions checks', () => {
  for (const [name, context] of Object.entries(VARIANTS)) {
    it(`pass for ${name}: synthesis (which fails on any unacknowledged finding) leaves an empty report`, () => {
      const { assembly } = synthSmarthost(context);
      const report = JSON.parse(readFileSync(join(assembly.directory, 'validation-report.json'), 'utf8')) as { pluginReports: unknown[] };
      assert.deepEqual(report.pluginReports, [], 'warnings count too: nothing may be left unacknowledged');
    });

    it(`for ${name}, every raw finding is acknowledged where it occurs and every acknowledgement answers one`, () => {
      const { stack, assembly } = synthSmarthost(context);
      const template = assembly.getStackByName(stack.stackName).template;
      const raw = rawAwsSolutionsFindings(template);
      assert.ok(raw.length > 0, 'the raw check must find something, or it is not checking');
      const paths = pathsByLogicalId(stack);
      const acknowledgements = acknowledgementsIn(stack);

      const covered = (finding: { id: string; logicalId: string }) => {
        const path = paths.get(finding.logicalId);
        return acknowledgements.some((ack) => ack.id === finding.id && path !== undefined && (path === ack.path || path.startsWith(`${ack.path}/`)));
      };
      assert.deepEqual(raw.filter((finding) => !covered(finding)), [], 'unacknowledged raw findings');

      const answered = (ack: { id: string; path: string }) =>
        raw.some((finding) => {
          const path = paths.get(finding.logicalId);
          return finding.id === ack.id && path !== undefined && (path === ack.path || path.startsWith(`${ack.path}/`));
        });
      assert.deepEqual(acknowledgements.filter((ack) => !answered(ack)), [], 'stale acknowledgements (no finding behind them)');
    });
  }

  it('acknowledges exactly five findings, each with its reason in the code', () => {
    const { stack } = synthSmarthost();
    const bucket = logicalIdOf(stack, stack.bodyBucket.bucket);
    const acknowledged = acknowledgementsIn(stack).map(({ id, path }) => `${path} ${id}`).sort();
    assert.deepEqual(acknowledged, [
      `Smarthost/Agent/Role AwsSolutions-IAM5[Resource::*]`,
      `Smarthost/Agent/Role AwsSolutions-IAM5[Resource::<${bucket}.Arn>/incoming/*]`,
      `Smarthost/Bodies/Bucket AwsSolutions-S1`,
      `Smarthost/Delivery/Role AwsSolutions-IAM5[Resource::<${bucket}.Arn>/incoming/*]`,
      `Smarthost/Upstream/Resource AwsSolutions-SMG4`,
    ]);
    for (const ack of acknowledgementsIn(stack)) {
      assert.ok(ack.reason.length >= 80, `${ack.path} ${ack.id}: the reason must explain, got '${ack.reason}'`);
    }
  });
});
