import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { after, afterEach, before, describe, it } from 'node:test';
import { tokenProviderFor } from '../../delivery/createUpstreamSubmitter.ts';
import { certificateNotAfter } from '../../delivery/token/certificateExpiry.ts';
import { upstreamConfigSchema } from '../../delivery/upstreamConfig.ts';
import { caPem, clientCert, clientKey } from '../../testbed/fakes/tlsFixtures.ts';
import { sendRaw, startTestAgent, type TestAgent } from '../../testbed/helpers/agentHarness.ts';
import { CLIENT_ID, CLIENT_SECRET, RELAY_MAILBOX, TENANT_ID, startExchangeOnlineRig, type ExchangeOnlineRig } from '../../testbed/helpers/exchangeOnlineRig.ts';
import { pollUntil } from '../../testbed/helpers/pollUntil.ts';
import { WebhookReceiver } from './webhookReceiver.ts';

const ADMIN = 'ops@contoso.com';
const BODY_MARKER = 'PAYROLL-SCAN-CONFIDENTIAL-4711';
const WEBHOOK_SECRET = 'webhookb2/tenant/IncomingWebhook/hook-secret-0815';

function deviceMessage(): string {
  return `From: scanner@contoso.com\r\nTo: you@contoso.com\r\nSubject: Scan\r\n\r\n${BODY_MARKER}\r\n`;
}

describe('alerts end to end (fake Exchange Online, local webhook receiver)', () => {
  let rig: ExchangeOnlineRig;
  const receiver = new WebhookReceiver();
  let agent: TestAgent | undefined;

  before(async () => {
    rig = await startExchangeOnlineRig();
    await receiver.start();
  });
  after(async () => {
    await receiver.close();
    await rig.close();
  });
  afterEach(async () => {
    await agent?.dispose();
    agent = undefined;
    receiver.posts.length = 0;
  });

  async function start(thresholds: Record<string, string | number> = {}): Promise<TestAgent> {
    mailsBefore = rig.exo.messages.length;
    agent = await startTestAgent({
      upstream: rig.upstream(),
      retry: { schedule: ['300ms'] },
      // The spool-fill alert stays out of the way unless a test asks for it (the test disk may be well used).
      alerts: { email: ADMIN, webhooks: [{ url: receiver.url(WEBHOOK_SECRET), format: 'json' }], interval: '100ms', thresholds: { spoolFillPercent: 100, ...thresholds } },
    });
    return agent;
  }

  let mailsBefore = 0;
  /** The admin's alert mails since this test started. */
  const adminMails = () => rig.exo.messages.slice(mailsBefore).filter((m) => m.rcptTo.includes(ADMIN));
  const posts = (condition: string, kind: string) => receiver.posts.filter((p) => (p.body as { condition: string; kind: string }).condition === condition && (p.body as { kind: string }).kind === kind);

  function assertNothingSecret(text: string): void {
    assert.doesNotMatch(text, new RegExp(BODY_MARKER));
    assert.doesNotMatch(text, new RegExp(CLIENT_SECRET));
    assert.doesNotMatch(text, /hook-secret-0815/);
  }

  it('raises held-for-operator by webhook and mails the admin through the upstream, once', async () => {
    const relay = await start();
    rig.exo.failNext('mail', '550 5.7.60 SMTP; Client does not have permissions to send as this sender');
    await sendRaw(relay.address.port, 'scanner@contoso.com', ['you@contoso.com'], deviceMessage());
    await pollUntil(() => posts('held-for-operator', 'raised').length === 1, 10_000, 'the held alert by webhook');
    await pollUntil(() => adminMails().length === 1, 10_000, 'the held alert mailed to the admin');
    const mail = adminMails()[0];
    assert.ok(mail);
    assert.equal(mail.mailFrom, RELAY_MAILBOX);
    const raw = mail.raw.toString('utf8');
    assert.match(raw, /^From: relay@contoso\.com\r\n/m);
    assert.match(raw, /^Auto-Submitted: auto-generated\r\n/m);
    assert.match(raw, /ALERT: Mail is held for the operator/);
    assert.match(raw, /5\.7\.60/);
    // More evaluations go by: still one of each. (The held message is retried on its 300 ms
    // schedule and goes out this time, so a RECOVERED mail may follow: that one is not a repeat.)
    await relay.alerts?.monitor.evaluate();
    await relay.alerts?.monitor.evaluate();
    assert.equal(posts('held-for-operator', 'raised').length, 1);
    assert.equal(adminMails().filter((m) => /ALERT: Mail is held/.test(m.raw.toString('utf8'))).length, 1);
    for (const post of receiver.posts) assertNothingSecret(post.text);
    assertNothingSecret(raw);
    assertNothingSecret(relay.logs.text);
  });

  it('alerts by webhook while Exchange Online is unreachable and mails the alert and its recovery once it is back', async () => {
    const relay = await start({ upstreamUnreachable: '200ms' });
    rig.exo.setDown(true);
    const before = rig.exo.messages.length;
    try {
      await sendRaw(relay.address.port, 'scanner@contoso.com', ['you@contoso.com'], deviceMessage());
      await pollUntil(() => posts('upstream-unreachable', 'raised').length === 1, 10_000, 'the unreachable alert by webhook');
      assert.equal(adminMails().length, 0, 'no mail while the upstream is down');
    } finally {
      rig.exo.setDown(false);
    }
    await pollUntil(() => posts('upstream-unreachable', 'cleared').length === 1, 15_000, 'the recovery by webhook');
    await pollUntil(() => adminMails().length === 2, 10_000, 'the alert and the recovery mailed');
    const [alert, recovery] = adminMails().map((m) => m.raw.toString('utf8'));
    assert.match(alert ?? '', /ALERT: Microsoft 365 cannot be reached/);
    assert.match(alert ?? '', /This alert could not be mailed while microsoft 365 cannot be reached \(from /);
    assert.match(recovery ?? '', /RECOVERED: Microsoft 365 cannot be reached/);
    assert.ok(rig.exo.messages.slice(before).some((m) => m.rcptTo.includes('you@contoso.com')), 'the device message went out too');
    assert.equal(posts('upstream-unreachable', 'raised').length, 1);
    for (const post of receiver.posts) assertNothingSecret(post.text);
    assertNothingSecret(relay.logs.text);
  });

  it('starts and stops with the agent', async () => {
    const relay = await start({ spoolFillPercent: 1 });
    assert.match(relay.logs.text, /alerts on/);
    await pollUntil(() => posts('spool-fill', 'raised').length === 1, 10_000, 'the spool-fill alert (any disk is over 1%)');
    await relay.stop();
    const count = receiver.posts.length;
    await relay.alerts?.monitor.evaluate();
    assert.equal(receiver.posts.length, count, 'a stopped monitor sends nothing');
  });
});

describe('credential health for the expiry alerts', () => {
  let rig: ExchangeOnlineRig;
  before(async () => {
    rig = await startExchangeOnlineRig();
  });
  after(async () => {
    await rig.close();
  });

  it('the token client reports a failed renewal, and clears it once a token is had', async () => {
    const auth = { type: 'oauth2' as const, tenantId: TENANT_ID, clientId: CLIENT_ID, authority: rig.tokens.url, scope: 'https://outlook.office365.com/.default', user: RELAY_MAILBOX };
    const wrong = tokenProviderFor({ ...auth, clientSecret: 'wrong-secret' }, caPem);
    await assert.rejects(wrong.getToken());
    const failed = wrong.health();
    assert.ok(failed.renewalFailedAt !== undefined);
    assert.equal(failed.expiresAt, undefined);
    assert.doesNotMatch(failed.error ?? '', /wrong-secret/);

    const right = tokenProviderFor({ ...auth, clientSecret: CLIENT_SECRET }, caPem);
    await right.getToken();
    const healthy = right.health();
    assert.equal(healthy.renewalFailedAt, undefined);
    assert.ok((healthy.expiresAt ?? 0) > Date.now());
  });

  it('reads the certificate credential expiry from upstream.auth.certificate', () => {
    const upstream = upstreamConfigSchema.parse(rig.upstream({ auth: { type: 'oauth2', tenantId: TENANT_ID, clientId: CLIENT_ID, certificate: { key: clientKey, cert: clientCert }, authority: rig.tokens.url, user: RELAY_MAILBOX } }));
    assert.equal(certificateNotAfter(upstream), Date.parse(new X509Certificate(clientCert).validTo));
    assert.equal(certificateNotAfter(upstreamConfigSchema.parse(rig.upstream())), undefined);
  });
});
