import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { after, afterEach, before, describe, it } from 'node:test';
import { clientCert, clientKey } from '../../testbed/fakes/tlsFixtures.ts';
import { sendRaw, startTestAgent, waitForAttempt, type TestAgent } from '../../testbed/helpers/agentHarness.ts';
import { CLIENT_ID, RELAY_MAILBOX, TENANT_ID, startExchangeOnlineRig, type ExchangeOnlineRig } from '../../testbed/helpers/exchangeOnlineRig.ts';
import { metricValue } from '../../testbed/helpers/metricValue.ts';

const USER = 'admin';
const PASSWORD = 'correct horse battery staple';
const AUTH = { authorization: `Basic ${Buffer.from(`${USER}:${PASSWORD}`).toString('base64')}` };

describe('credential health on /metrics', () => {
  let rig: ExchangeOnlineRig;
  let agent: TestAgent | undefined;

  before(async () => {
    rig = await startExchangeOnlineRig();
  });
  afterEach(async () => {
    await agent?.dispose();
    agent = undefined;
  });
  after(async () => {
    await rig.close();
  });

  async function scrape(upstream: ReturnType<ExchangeOnlineRig['upstream']>): Promise<{ agent: TestAgent; metrics: () => Promise<string> }> {
    agent = await startTestAgent({ upstream, retry: { schedule: ['1h'] }, status: { host: '127.0.0.1', port: 0, auth: { username: USER, password: PASSWORD } } });
    const base = `http://127.0.0.1:${agent.status?.address.port}`;
    return { agent, metrics: async () => (await fetch(`${base}/metrics`, { headers: AUTH })).text() };
  }

  it('shows when the token expires once one was had, and no renewal failing', async () => {
    const { agent, metrics } = await scrape(rig.upstream());
    assert.equal(metricValue(await metrics(), 'smarthost_token_expiry_timestamp_seconds'), 0, 'none obtained before the first delivery');
    const reply = await sendRaw(agent.address.port, 'scanner@contoso.com', ['you@contoso.com'], 'Subject: scan\r\n\r\nx\r\n');
    const id = /queued as (\S+)$/.exec(reply)?.[1] ?? '';
    assert.equal((await waitForAttempt(agent, (r) => r.id === id)).action, 'delivered');
    const text = await metrics();
    assert.ok((metricValue(text, 'smarthost_token_expiry_timestamp_seconds') ?? 0) > Date.now() / 1000);
    assert.equal(metricValue(text, 'smarthost_token_renewal_failing'), 0);
    assert.equal(metricValue(text, 'smarthost_certificate_expiry_timestamp_seconds'), undefined, 'a client secret has no certificate gauge');
  });

  it('shows a renewal failing while the secret is wrong', async () => {
    const upstream = rig.upstream();
    const { agent, metrics } = await scrape({ ...upstream, auth: { ...(upstream.auth as object), clientSecret: 'wrong-secret' } } as typeof upstream);
    const reply = await sendRaw(agent.address.port, 'scanner@contoso.com', ['you@contoso.com'], 'Subject: scan\r\n\r\nx\r\n');
    const id = /queued as (\S+)$/.exec(reply)?.[1] ?? '';
    assert.notEqual((await waitForAttempt(agent, (r) => r.id === id)).action, 'delivered');
    const text = await metrics();
    assert.equal(metricValue(text, 'smarthost_token_renewal_failing'), 1);
    assert.doesNotMatch(text, /wrong-secret/);
  });

  it("shows the certificate credential's expiry", async () => {
    const upstream = rig.upstream({ auth: { type: 'oauth2', tenantId: TENANT_ID, clientId: CLIENT_ID, certificate: { key: clientKey, cert: clientCert }, authority: rig.tokens.url, user: RELAY_MAILBOX } });
    const { metrics } = await scrape(upstream);
    assert.equal(metricValue(await metrics(), 'smarthost_certificate_expiry_timestamp_seconds'), Date.parse(new X509Certificate(clientCert).validTo) / 1000);
  });
});
