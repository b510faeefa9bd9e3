import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseUpstreamConfig } from '../../delivery/upstreamConfig.ts';

const oauth = { type: 'oauth2', tenantId: 'contoso.onmicrosoft.com', clientId: 'app-1', clientSecret: 's', user: 'relay@contoso.example' };

test('gcc-high preset fills host, authority and the SMTP scope', () => {
  const r = parseUpstreamConfig({ preset: 'gcc-high', auth: oauth });
  assert.ok(r.ok);
  assert.equal(r.config.host, 'smtp.office365.us');
  assert.equal(r.config.auth.type === 'oauth2' && r.config.auth.authority, 'https://login.microsoftonline.us');
  assert.equal(r.config.auth.type === 'oauth2' && r.config.auth.scope, 'https://outlook.office365.us/.default');
});

test('china preset with route graph takes the Graph scope and base URL; given values win', () => {
  const r = parseUpstreamConfig({ preset: 'china', route: 'graph', host: 'override.example', auth: oauth });
  assert.ok(r.ok);
  assert.equal(r.config.host, 'override.example');
  assert.equal(r.config.auth.type === 'oauth2' && r.config.auth.scope, 'https://microsoftgraph.chinacloudapi.cn/.default');
  assert.equal(r.config.graph?.baseUrl, 'https://microsoftgraph.chinacloudapi.cn');
});

test('hve preset is smtp.hve.mx.microsoft:587', () => {
  const r = parseUpstreamConfig({ preset: 'hve', auth: oauth });
  assert.ok(r.ok);
  assert.equal(`${r.config.host}:${r.config.port}`, 'smtp.hve.mx.microsoft:587');
});

test('route graph with basic auth names the key', () => {
  const r = parseUpstreamConfig({ preset: 'worldwide', route: 'graph', auth: { type: 'basic', user: 'u', password: 'p' } }, ['upstream']);
  assert.equal(r.ok, false);
  assert.ok(!r.ok && r.problems.some((p) => p.startsWith('upstream.auth.type')), JSON.stringify(!r.ok && r.problems));
});
