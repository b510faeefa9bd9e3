import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { SecretsProvider } from '@aws-lambda-powertools/parameters/secrets';
import { SecretUpstreamSubmitter } from '../../delivery/secretUpstreamSubmitter.ts';
import { credentialDaysLeft } from '../../functions/queue-delivery/credentialDaysLeft.ts';
import { startLocalSecretsManager, type LocalSecretsManager } from '../../testbed/aws/localSecretsManager.ts';
import { clientCert, clientKey } from '../../testbed/fakes/tlsFixtures.ts';
import { CLIENT_ID, RELAY_MAILBOX, TENANT_ID, startExchangeOnlineRig, type ExchangeOnlineRig } from '../../testbed/helpers/exchangeOnlineRig.ts';

const NOW = Date.parse('2026-12-04T12:00:00Z');
const DAY = 86_400_000;

describe('CredentialExpiresInDays (the function’s credential-expiry metric)', () => {
  it('is the certificate’s days left, or 0 once a token could not be renewed and none is held', () => {
    assert.equal(credentialDaysLeft(undefined, NOW), undefined, 'secret not read yet');
    assert.equal(credentialDaysLeft({ token: { expiresAt: NOW + 3_600_000 } }, NOW), undefined, 'a client secret that works: nothing to report');
    assert.equal(credentialDaysLeft({ certificateNotAfter: NOW + 12.5 * DAY }, NOW), 12.5);
    assert.equal(credentialDaysLeft({ certificateNotAfter: NOW + 40 * DAY, token: { renewalFailedAt: NOW - 1000 } }, NOW), 0);
    assert.equal(credentialDaysLeft({ certificateNotAfter: NOW - DAY }, NOW), 0, 'expired: never negative');
  });

  describe('from the upstream secret', () => {
    let rig: ExchangeOnlineRig;
    let secrets: LocalSecretsManager;
    before(async () => {
      [rig, secrets] = await Promise.all([startExchangeOnlineRig(), startLocalSecretsManager()]);
    });
    after(async () => {
      await secrets?.stop();
      await rig?.close();
    });

    it('reports the certificate credential’s expiry and a healthy token after a delivery', async () => {
      const upstream = rig.upstream({ auth: { type: 'oauth2', tenantId: TENANT_ID, clientId: CLIENT_ID, certificate: { key: clientKey, cert: clientCert }, authority: rig.tokens.url, user: RELAY_MAILBOX } });
      const { arn } = secrets.setSecret('smarthost-upstream-cert', JSON.stringify(upstream));
      const submitter = new SecretUpstreamSubmitter(arn, { ttlSeconds: 0, secrets: new SecretsProvider({ awsSdkV3Client: secrets.client }) });
      try {
        assert.equal(submitter.credentialHealth(), undefined);
        await submitter.submit({ id: 'credhealth01', from: RELAY_MAILBOX, to: ['you@contoso.com'], raw: Readable.from([Buffer.from('From: relay@contoso.com\r\nSubject: t\r\n\r\nx\r\n')]) });
        const health = submitter.credentialHealth();
        assert.equal(health?.certificateNotAfter, Date.parse(new X509Certificate(clientCert).validTo));
        assert.equal(health?.token?.renewalFailedAt, undefined);
        assert.ok((health?.token?.expiresAt ?? 0) > Date.now());
      } finally {
        await submitter.close();
      }
    });
  });
});
