import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { FALLBACK_ACCOUNT, FALLBACK_REGION, readSettings, SettingsError } from '../../infra/settings.ts';
import { tempDir } from './helpers/tempDir.ts';

const ANCHOR = 'arn:aws:rolesanywhere:eu-west-1:123456789012:trust-anchor/0f1e2d3c-4b5a-6978-8695-a4b3c2d1e0f9';
const dir = tempDir('settings');
writeFileSync(join(dir, 'ca.pem'), '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n');
writeFileSync(join(dir, 'key.pem'), '-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----\n');

function read(context: Record<string, unknown>, env: NodeJS.ProcessEnv = {}) {
  return readSettings({ context: (key) => context[key], env, baseDir: dir });
}

function problems(context: Record<string, unknown>): readonly string[] {
  try {
    read(context);
  } catch (error) {
    assert.ok(error instanceof SettingsError, String(error));
    return error.problems;
  }
  assert.fail('expected the context to be refused');
}

describe('readSettings', () => {
  it('without context or credentials: the Smarthost stack in the fallback account and region, nothing optional', () => {
    assert.deepEqual(read({}), {
      stackName: 'Smarthost',
      account: FALLBACK_ACCOUNT,
      region: FALLBACK_REGION,
      alarmEmail: undefined,
      failureNoticeTo: undefined,
      customerManagedKey: false,
      agentTrust: { rolesAnywhereTrustAnchorArn: undefined, rolesAnywhereCaCertificatePem: undefined, certificateCommonName: undefined, principalArn: undefined },
    });
  });

  it('takes the account and region the CLI found, else AWS_REGION', () => {
    const settings = read({}, { CDK_DEFAULT_ACCOUNT: '210987654321', CDK_DEFAULT_REGION: 'eu-central-1', AWS_REGION: 'us-west-2' });
    assert.deepEqual([settings.account, settings.region], ['210987654321', 'eu-central-1']);
    assert.equal(read({}, { AWS_REGION: 'us-west-2' }).region, 'us-west-2');
  });

  it("treats cdk.json's empty strings as not given", () => {
    const settings = read({ alarmEmail: '', rolesAnywhereTrustAnchorArn: '', customerManagedKey: false, agentCertificateCn: '' });
    assert.equal(settings.alarmEmail, undefined);
    assert.equal(settings.agentTrust.rolesAnywhereTrustAnchorArn, undefined);
  });

  it('reads -c values (always text) and cdk.json values alike', () => {
    assert.equal(read({ customerManagedKey: 'true' }).customerManagedKey, true);
    assert.equal(read({ customerManagedKey: true }).customerManagedKey, true);
    assert.equal(read({ customerManagedKey: 'false' }).customerManagedKey, false);
    assert.equal(read({ alarmEmail: ' ops@contoso.com ' }).alarmEmail, 'ops@contoso.com');
  });

  it('reads the CA certificate for a trust anchor, relative to the working directory', () => {
    const settings = read({ agentCaCertificateFile: 'ca.pem', agentCertificateCn: 'office-box' });
    assert.match(settings.agentTrust.rolesAnywhereCaCertificatePem ?? '', /^-----BEGIN CERTIFICATE-----/);
    assert.equal(settings.agentTrust.certificateCommonName, 'office-box');
  });

  it('reports every bad value at once, each with its key', () => {
    assert.deepEqual(
      problems({
        stackName: '1st',
        alarmEmail: 'ops',
        failureNoticeTo: 'postmaster@',
        delayedNoticeAfter: 'soon',
        customerManagedKey: 'yes',
        rolesAnywhereTrustAnchorArn: 'arn:aws:rolesanywhere:eu-west-1:123456789012:profile/x',
        agentPrincipalArn: 'smarthost-agent',
      }),
      [
        "stackName: expected a CloudFormation stack name (letters, digits, hyphens), got '1st'",
        "alarmEmail: expected an email address, got 'ops'",
        "failureNoticeTo: expected an email address, got 'postmaster@'",
        "delayedNoticeAfter: expected off or a duration such as 30m, 4h or 1d, got 'soon'",
        "customerManagedKey: expected true or false, got 'yes'",
        "rolesAnywhereTrustAnchorArn: expected a Roles Anywhere trust anchor ARN, got 'arn:aws:rolesanywhere:eu-west-1:123456789012:profile/x'",
        "agentPrincipalArn: expected an IAM user or role ARN, got 'smarthost-agent'",
      ],
    );
  });

  it('names a CA file that is missing or holds no certificate', () => {
    assert.deepEqual(problems({ agentCaCertificateFile: 'missing.pem' }), [`agentCaCertificateFile: cannot read ${join(dir, 'missing.pem')} (ENOENT)`]);
    assert.deepEqual(problems({ agentCaCertificateFile: 'key.pem' }), [`agentCaCertificateFile: ${join(dir, 'key.pem')} holds no PEM certificate`]);
  });

  it('refuses ways of trusting the agent that exclude each other', () => {
    assert.deepEqual(problems({ rolesAnywhereTrustAnchorArn: ANCHOR, agentCaCertificateFile: 'ca.pem', agentPrincipalArn: 'arn:aws:iam::123456789012:user/agent' }), [
      'rolesAnywhereTrustAnchorArn: give it or agentCaCertificateFile, not both',
      'agentPrincipalArn: cannot be combined with Roles Anywhere (the role then trusts Roles Anywhere only)',
    ]);
    assert.deepEqual(problems({ agentCertificateCn: 'office-box' }), ['agentCertificateCn: needs rolesAnywhereTrustAnchorArn or agentCaCertificateFile']);
  });

  it('says how many problems there are in its message', () => {
    assert.throws(() => read({ alarmEmail: 'x', failureNoticeTo: 'y' }), {
      name: 'SettingsError',
      message: "Invalid smarthost context (2 problems):\n  alarmEmail: expected an email address, got 'x'\n  failureNoticeTo: expected an email address, got 'y'",
    });
  });
});
