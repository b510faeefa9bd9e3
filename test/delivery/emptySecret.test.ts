import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { SecretsProvider } from '@aws-lambda-powertools/parameters/secrets';
import { SecretUpstreamSubmitter, UpstreamSecretError } from '../../delivery/secretUpstreamSubmitter.ts';
import { startLocalSecretsManager, type LocalSecretsManager } from '../../testbed/aws/localSecretsManager.ts';

describe('an upstream secret created without a value', () => {
  let secrets: LocalSecretsManager;
  before(async () => {
    secrets = await startLocalSecretsManager();
  });
  after(async () => {
    await secrets?.stop();
  });

  it('is a problem for the operator naming the secret, not a network failure', async () => {
    const { arn } = secrets.createEmptySecret('smarthost/upstream-empty');
    const submitter = new SecretUpstreamSubmitter(arn, { ttlSeconds: 0, secrets: new SecretsProvider({ awsSdkV3Client: secrets.client }) });
    await assert.rejects(submitter.submit({ id: 'emptysecret1', from: 'a@contoso.com', to: ['b@contoso.com'], raw: Readable.from([]) }), (error: unknown) => {
      assert.ok(error instanceof UpstreamSecretError);
      assert.equal(error.message, `the upstream secret ${arn} is not valid: the secret has no value yet (no AWSCURRENT version)`);
      return true;
    });
  });
});
