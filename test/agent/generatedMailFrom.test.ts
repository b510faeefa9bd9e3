import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { mailboxPoolFor } from '../../edge-agent/agent.ts';
import { agentConfigSchema } from '../../edge-agent/config/agentConfigSchema.ts';
import { createLogger } from '../../edge-agent/logger.ts';
import { awsTestEnv } from '../../testbed/aws/awsTestEnv.ts';
import { startLocalSecretsManager, type LocalSecretsManager } from '../../testbed/aws/localSecretsManager.ts';
import { RELAY_MAILBOX, startExchangeOnlineRig, type ExchangeOnlineRig } from '../../testbed/helpers/exchangeOnlineRig.ts';

/**
 * Alerts and notices the office box generates go out From the upstream mailbox: Exchange Online
 * refuses any other From with 550 5.7.60. With `upstream.secretArn` that mailbox is in the secret.
 */
describe('the From of generated mail', () => {
  let rig: ExchangeOnlineRig;
  let secrets: LocalSecretsManager;
  const saved = { ...process.env };

  before(async () => {
    [rig, secrets] = await Promise.all([startExchangeOnlineRig(), startLocalSecretsManager()]);
    for (const name of Object.keys(process.env)) if (name.startsWith('AWS_')) delete process.env[name];
    Object.assign(process.env, awsTestEnv({ secretsManager: secrets.endpoint }));
  });
  after(async () => {
    process.env = saved;
    await Promise.all([rig.close(), secrets.stop()]);
  });

  it('is the mailbox named in the upstream secret, read when first needed', async () => {
    const { arn } = secrets.setSecret('smarthost-upstream', JSON.stringify(rig.upstream()));
    const config = agentConfigSchema.parse({ spool: { dir: '/tmp/smarthost-generated-from' }, upstream: { secretArn: arn } });
    const { pool, generatedFrom } = await mailboxPoolFor(config, createLogger('silent'));
    try {
      assert.equal(pool.members[0]?.mailbox, undefined, 'the pool does not know it before the secret is read');
      assert.equal(await generatedFrom(), RELAY_MAILBOX);
    } finally {
      await pool.close();
    }
  });

  it('is the first mailbox of an inline upstream', async () => {
    const config = agentConfigSchema.parse({ spool: { dir: '/tmp/smarthost-generated-from' }, upstream: rig.upstream() });
    const { pool, generatedFrom } = await mailboxPoolFor(config, createLogger('silent'));
    try {
      assert.equal(await generatedFrom(), RELAY_MAILBOX);
    } finally {
      await pool.close();
    }
  });
});
