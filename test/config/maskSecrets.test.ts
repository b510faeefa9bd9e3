import { inlineUpstream } from '../../edge-agent/config/agentConfigSchema.ts';
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loadConfigFromText } from '../../edge-agent/config/loadConfig.ts';
import { maskSecrets } from '../../edge-agent/config/maskSecrets.ts';

const SECRETS = {
  CLIENT_SECRET: 'client-secret-Zq8~value',
  DEVICE_PASSWORD: 'device-password-91!',
  PRIVATE_KEY: '-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----\n',
  BASIC_PASSWORD: 'basic-password-77#',
};

const devices = `
clients:
  - name: helpdesk
    address: 10.0.0.0/28
    auth: { username: helpdesk, password: "\${DEVICE_PASSWORD}" }
  - { name: fax, address: 10.0.0.99 }
`;

function load(upstream: string) {
  return loadConfigFromText(`${devices}${upstream}`, { baseDir: '/etc/smarthost', env: SECRETS });
}

describe('maskSecrets', () => {
  it('masks the client secret and device passwords and keeps everything else', () => {
    const config = load(`
upstream:
  host: smtp.office365.com
  auth:
    type: oauth2
    tenantId: contoso.onmicrosoft.com
    clientId: app
    clientSecret: "\${CLIENT_SECRET}"
    user: relay@contoso.com
`);
    const text = JSON.stringify(maskSecrets(config));
    assert.ok(!text.includes(SECRETS.CLIENT_SECRET));
    assert.ok(!text.includes(SECRETS.DEVICE_PASSWORD));
    const masked = JSON.parse(text) as typeof config;
    assert.equal(masked.clients[0]?.auth?.password, '********');
    assert.equal(masked.clients[0]?.auth?.username, 'helpdesk');
    assert.deepEqual(inlineUpstream(masked)?.auth, { ...inlineUpstream(config)?.auth, clientSecret: '********' });
    assert.deepEqual({ ...masked, clients: config.clients, upstream: config.upstream }, config);
  });

  it('masks an inline certificate key', () => {
    const config = load(`
upstream:
  host: smtp.office365.com
  auth:
    type: oauth2
    tenantId: contoso.onmicrosoft.com
    clientId: app
    certificate: { key: "\${PRIVATE_KEY}", cert: ./app.crt }
    user: relay@contoso.com
`);
    const text = JSON.stringify(maskSecrets(config));
    assert.ok(!text.includes('MIIEvQIBADANBgkqhkiG9w0BAQEFAASC'));
    assert.ok(text.includes('"cert":"/etc/smarthost/app.crt"'));
  });

  it('masks the basic password', () => {
    const config = load('upstream:\n  host: smtp-hve.office365.com\n  auth: { type: basic, user: relay@contoso.com, password: "${BASIC_PASSWORD}" }\n');
    const text = JSON.stringify(maskSecrets(config));
    assert.ok(!text.includes(SECRETS.BASIC_PASSWORD));
    assert.ok(text.includes('"user":"relay@contoso.com"'));
  });

  it('returns a copy and leaves the configuration in use untouched', () => {
    const config = load('');
    maskSecrets(config);
    assert.equal(config.clients[0]?.auth?.password, SECRETS.DEVICE_PASSWORD);
  });
});
