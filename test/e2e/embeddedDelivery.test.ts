import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { after, before, describe, test } from 'node:test';
import { deviceClient, sendRaw, startTestAgent, type TestAgent } from '../../testbed/helpers/agentHarness.ts';
import { BASIC_PASSWORD, CLIENT_SECRET, RELAY_MAILBOX, startExchangeOnlineRig, type ExchangeOnlineRig } from '../../testbed/helpers/exchangeOnlineRig.ts';
import { clientCert, clientKey } from '../../testbed/fakes/tlsFixtures.ts';

const sha256 = (bytes: Buffer | string) => createHash('sha256').update(bytes).digest('hex');
const fixture = (name: string) => readFile(new URL(`../fixtures/devices/${name}`, import.meta.url));
const crlf = (bytes: Buffer) => Buffer.from(bytes.toString('latin1').replace(/\r?\n/g, '\r\n'), 'latin1');

describe('embedded relay delivering to Exchange Online', () => {
  let rig: ExchangeOnlineRig;
  let agent: TestAgent;

  before(async () => {
    rig = await startExchangeOnlineRig();
    agent = await startTestAgent({
      upstream: rig.upstream(),
      clients: [{ name: 'local-devices', address: '127.0.0.0/8' }],
    });
  });

  after(async () => {
    await agent?.dispose();
    await rig?.close();
  });

  test('delivers the device bytes and envelope unchanged, over XOAUTH2, with one token for many messages', async () => {
    const before = rig.exo.messages.length;
    const device = deviceClient(agent.address.port, { pool: true, maxConnections: 3 });
    const sent = await Promise.all(
      Array.from({ length: 12 }, (_, i) =>
        device.sendMail({
          envelope: { from: 'scanner@contoso.com', to: ['you@contoso.com', 'partner@example.net'] },
          raw: `From: scanner@contoso.com\r\nTo: you@contoso.com\r\nSubject: scan ${i}\r\nMessage-ID: <scan-${i}@printer.local>\r\n\r\npage ${i}\r\n`,
        }),
      ),
    );
    device.close();
    for (const info of sent) {
      assert.match(info.response, /^250 2\.0\.0 Ok: queued as [A-Za-z0-9_-]+$/);
    }
    const delivered = (await rig.exo.waitForMessages(before + 12, 15_000)).slice(before);
    for (let i = 0; i < 12; i++) {
      const raw = `From: scanner@contoso.com\r\nTo: you@contoso.com\r\nSubject: scan ${i}\r\nMessage-ID: <scan-${i}@printer.local>\r\n\r\npage ${i}\r\n`;
      const match = delivered.find((m) => m.raw.toString('latin1').includes(`Subject: scan ${i}\r\n`));
      assert.ok(match, `message ${i} arrived`);
      assert.equal(match.sha256, sha256(raw));
      assert.equal(match.mailFrom, 'scanner@contoso.com');
      assert.deepEqual(match.rcptTo, ['you@contoso.com', 'partner@example.net']);
      assert.deepEqual({ method: match.auth.method, user: match.auth.user }, { method: 'XOAUTH2', user: RELAY_MAILBOX });
    }
    assert.equal(rig.tokens.tokenRequests, 1, 'one token serves every connection');
    assert.ok(rig.exo.maxConcurrentSessionsPerMailbox <= 3, `at most 3 sessions per mailbox, saw ${rig.exo.maxConcurrentSessionsPerMailbox}`);
    await agent.deliveryLoop.whenIdle();
    assert.equal((await agent.spool.listQueued()).length, 0, 'delivered mail leaves the spool');
  });

  test('forwards dot lines so the upstream sees the same text (dot-stuffing round trip)', async () => {
    const bytes = crlf(await fixture('nas-report-dots.eml'));
    const before = rig.exo.messages.length;
    await sendRaw(agent.address.port, 'nas@contoso.com', ['ops@contoso.com'], bytes);
    const [message] = (await rig.exo.waitForMessages(before + 1, 10_000)).slice(before);
    assert.equal(message?.sha256, sha256(bytes));
  });

  test('never writes the client secret or a token into the logs', async () => {
    await agent.deliveryLoop.whenIdle();
    assert.ok(agent.logs.lines.length > 10);
    assert.ok(!agent.logs.text.includes(CLIENT_SECRET), 'client secret absent from logs');
    assert.ok(!/eyJ[A-Za-z0-9_-]{10,}\./.test(agent.logs.text), 'no JWT in logs');
    assert.ok(!agent.logs.text.includes('page 3'), 'no message body in logs');
  });
});

describe('embedded relay with a send-as client', () => {
  let rig: ExchangeOnlineRig;
  let agent: TestAgent;

  before(async () => {
    rig = await startExchangeOnlineRig();
    agent = await startTestAgent({
      upstream: rig.upstream(),
      clients: [{ name: 'scanner', address: '127.0.0.1', sendAs: 'FaxService@contoso.com' }],
    });
  });

  after(async () => {
    await agent?.dispose();
    await rig?.close();
  });

  test('an LF-only scanner whose From Exchange would refuse arrives as the send-as address, body unchanged', async () => {
    const bytes = crlf(await fixture('scanner-lf-only.eml'));
    await sendRaw(agent.address.port, 'scanner@printer.local', ['you@contoso.com'], await fixture('scanner-lf-only.eml'));
    const [message] = await rig.exo.waitForMessages(1, 10_000);
    assert.ok(message);
    assert.equal(message.mailFrom, 'FaxService@contoso.com');
    const text = message.raw.toString('latin1');
    const headerEnd = text.indexOf('\r\n\r\n') + 4;
    const header = text.slice(0, headerEnd);
    assert.match(header, /^From: FaxService@contoso\.com\r$/m);
    assert.match(header, /^Reply-To: "scanner@printer\.local" <scanner@printer\.local>\r$/m);
    const originalBodyStart = bytes.indexOf('\r\n\r\n') + 4;
    assert.equal(sha256(message.raw.subarray(headerEnd)), sha256(bytes.subarray(originalBodyStart)), 'body bytes untouched');
  });
});

describe('other ways to authenticate upstream', () => {
  let rig: ExchangeOnlineRig;

  before(async () => {
    rig = await startExchangeOnlineRig();
  });

  after(async () => rig?.close());

  test('app-only OAuth2 with a certificate signs a client assertion instead of sending a secret', async () => {
    const upstream = rig.upstream();
    const { clientSecret: _secret, ...oauth } = upstream.auth as { clientSecret?: string } & Record<string, unknown>;
    const agent = await startTestAgent({ upstream: { ...upstream, auth: { ...oauth, certificate: { key: clientKey, cert: clientCert } } as never } });
    try {
      await sendRaw(agent.address.port, 'scanner@contoso.com', ['you@contoso.com'], 'Subject: cert\r\n\r\nx\r\n');
      const [message] = await rig.exo.waitForMessages(1, 10_000);
      assert.equal(message?.auth.method, 'XOAUTH2');
      assert.deepEqual(rig.tokens.requests.map((r) => [r.grantKind, r.status]), [['assertion', 200]]);
    } finally {
      await agent.dispose();
    }
  });

  test('basic authentication uses AUTH LOGIN and never logs the password', async () => {
    const agent = await startTestAgent({
      upstream: { ...rig.upstream(), auth: { type: 'basic', user: RELAY_MAILBOX, password: BASIC_PASSWORD } },
    });
    try {
      const before = rig.exo.messages.length;
      await sendRaw(agent.address.port, 'scanner@contoso.com', ['you@contoso.com'], 'Subject: basic\r\n\r\nx\r\n');
      const [message] = (await rig.exo.waitForMessages(before + 1, 10_000)).slice(before);
      assert.deepEqual(message?.auth, { method: 'LOGIN', user: RELAY_MAILBOX });
      await agent.deliveryLoop.whenIdle();
      assert.ok(!agent.logs.text.includes(BASIC_PASSWORD));
    } finally {
      await agent.dispose();
    }
  });
});
