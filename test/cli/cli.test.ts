import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import { after, before, describe, test } from 'node:test';
import { makeTempDir } from '../../testbed/helpers/agentHarness.ts';
import { runCli, writeConfig } from '../../testbed/helpers/agentProcess.ts';

describe('smarthost CLI', () => {
  let dir: string;

  before(async () => {
    dir = await makeTempDir();
  });

  after(async () => rm(dir, { recursive: true, force: true }));

  test('start refuses an invalid configuration before listening, naming every bad key', async () => {
    const config = await writeConfig(dir, {
      listen: { port: 'twenty-five', bareNewlines: 'maybe' },
      clients: [{ name: 'fax', address: '10.0.0.300' }],
      upstream: { host: 'smtp.office365.com', auth: { type: 'oauth2', clientId: 'x', clientSecret: 'y', user: 'relay@contoso.com' } },
    }, 'bad.yaml');
    const result = await runCli(['start', '--config', config]);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /^ {2}listen\.port: /m);
    assert.match(result.stderr, /^ {2}listen\.bareNewlines: expected normalize \| reject/m);
    assert.match(result.stderr, /^ {2}clients\[0\]\.address: /m);
    assert.match(result.stderr, /^ {2}upstream\.auth\.tenantId: required when type is oauth2$/m);
    assert.equal(result.stdout, '', 'nothing started, nothing logged');
  });

  test('check-config prints the effective configuration with secrets masked', async () => {
    const config = await writeConfig(dir, {
      clients: [{ name: 'helpdesk', address: '10.0.0.0/28', auth: { username: 'helpdesk', password: '${HELPDESK_PW}' } }],
      upstream: {
        host: 'smtp.office365.com',
        auth: { type: 'oauth2', tenantId: 'contoso.onmicrosoft.com', clientId: 'app', clientSecret: '${CLIENT_SECRET}', user: 'relay@contoso.com' },
      },
    }, 'good.yaml');
    const result = await runCli(['check-config', '--config', config], { env: { HELPDESK_PW: 'pw-123-secret', CLIENT_SECRET: 'cs-456-secret' } });
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /maxMessageSize: 36700160/);
    assert.ok(!result.stdout.includes('pw-123-secret') && !result.stdout.includes('cs-456-secret'), 'secrets masked');
    assert.match(result.stdout, /clientSecret: "?\*{8}"?/);
  });

  test('a missing environment variable names the key and the variable', async () => {
    const config = await writeConfig(dir, {
      upstream: { host: 'smtp.office365.com', auth: { type: 'basic', user: 'relay@contoso.com', password: '${NOT_SET_ANYWHERE}' } },
    }, 'env.yaml');
    const result = await runCli(['check-config', '--config', config], { env: { NOT_SET_ANYWHERE: undefined } });
    assert.equal(result.code, 1);
    assert.match(result.stderr, /upstream\.auth\.password: .*NOT_SET_ANYWHERE/);
  });

  test('start names a certificate file it cannot read instead of failing later', async () => {
    const config = await writeConfig(dir, { listen: { port: 0, tls: { cert: './missing.crt', key: './missing.key' } } }, 'tls.yaml');
    const result = await runCli(['start', '--config', config]);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /^ {2}listen\.tls\.cert: cannot read \S+missing\.crt \(no such file\)$/m);
    assert.match(result.stderr, /^ {2}listen\.tls\.key: cannot read \S+missing\.key \(no such file\)$/m);
  });

  test('an unknown command exits 2 with the usage', async () => {
    const result = await runCli(['frobnicate']);
    assert.equal(result.code, 2);
    assert.match(result.stderr, /Usage: smarthost <command>/);
  });
});
