import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { maskUpstreamSecrets, parseUpstreamConfig } from '../../delivery/upstreamConfig.ts';
import { isInlinePem } from '../../config-toolkit/fieldSchemas.ts';

// The cloud secret carries the upstream block as JSON with PEM inline.
const PEM_CA = '-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIU\n-----END CERTIFICATE-----\n';
const PEM_KEY = '-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqG\n-----END PRIVATE KEY-----\n';

const secretJson = {
  host: 'smtp.office365.com',
  ca: PEM_CA,
  auth: {
    type: 'oauth2',
    tenantId: '11111111-2222-3333-4444-555555555555',
    clientId: 'aaaaaaaa-0000-0000-0000-000000000001',
    certificate: { key: PEM_KEY, cert: PEM_CA },
    authority: 'https://login.microsoftonline.us/',
    user: 'relay@contoso.com',
  },
  rateLimit: { perMinute: 10 },
  timeouts: { socket: '90s' },
};

describe('upstream config (shared with the cloud functions)', () => {
  it('parses the JSON form with inline PEM', () => {
    const result = parseUpstreamConfig(JSON.parse(JSON.stringify(secretJson)));
    assert.ok(result.ok);
    assert.equal(result.config.ca, PEM_CA);
    assert.equal(result.config.port, 587);
    assert.deepEqual(result.config.rateLimit, { perMinute: 10, connections: 3, recipientsPerDay: 10_000, perRecipientPerHour: 3_600 });
    assert.deepEqual(result.config.timeouts, { connect: 30_000, socket: 90_000 });
    assert.equal(result.config.auth.type === 'oauth2' && result.config.auth.authority, 'https://login.microsoftonline.us');
  });

  it('names problems under the given key prefix', () => {
    const result = parseUpstreamConfig({ host: 'h', ca: '-----BEGIN CERTIFICATE-----\nMIIB', auth: { type: 'oauth2', clientId: 'a', clientSecret: 's', user: 'r@c.com' }, extra: 1 }, ['smarthost/upstream']);
    assert.deepEqual(result, {
      ok: false,
      problems: [
        '["smarthost/upstream"].ca: inline PEM has no -----END line (was it cut short?)',
        '["smarthost/upstream"].auth.tenantId: required when type is oauth2',
        '["smarthost/upstream"].extra: unknown key',
      ],
    });
  });

  it('tells inline PEM from a path', () => {
    assert.equal(isInlinePem('  -----BEGIN CERTIFICATE-----\n'), true);
    assert.equal(isInlinePem('./certs/ca.pem'), false);
  });

  it('masks secrets without echoing them', () => {
    const result = parseUpstreamConfig(secretJson);
    assert.ok(result.ok);
    const text = JSON.stringify(maskUpstreamSecrets(result.config));
    assert.ok(!text.includes('MIGHAgEAMBMGByqGSM49AgEGCCqG'));
    assert.ok(text.includes('MIIBszCCAVmgAwIBAgIU'), 'certificates are public and stay visible');
  });

  it('does not echo a misplaced secret in its problem', () => {
    const result = parseUpstreamConfig({ host: 'h', auth: { type: 'basic', user: 'u', password: 12345678 } });
    assert.deepEqual(result, { ok: false, problems: ['auth.password: expected a string, got a number'] });
  });
});
