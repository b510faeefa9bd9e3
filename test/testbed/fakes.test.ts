import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { ConfidentialClientApplication, type Configuration } from '@azure/msal-node';
import nodemailer from 'nodemailer';
import type SMTPTransport from 'nodemailer/lib/smtp-transport';
import { EXCHANGE_ONLINE_SCOPE, startFakeTokenEndpoint, type FakeTokenEndpoint } from '../../testbed/fakes/fakeTokenEndpoint.ts';
import { startFakeExchangeOnline, type FakeExchangeOnline, type FakeExchangeOnlineOptions } from '../../testbed/fakes/fakeExchangeOnline.ts';
import { CaTrustingNetworkClient } from '../../testbed/fakes/msalNetworkClient.ts';
import { SmtpDialog } from '../../testbed/fakes/smtpDialog.ts';
import { caPem, clientCert, clientCertThumbprint, clientCertThumbprintSha256, clientKey, serverKey } from '../../testbed/fakes/tlsFixtures.ts';

const TENANT = '7d3c1e52-5f0a-4c8e-9b1d-2a6f4e8c0b13';
const SECRET_APP = '0f1e2d3c-0000-4000-8000-00000000a001';
const CERT_APP = '0f1e2d3c-0000-4000-8000-00000000a002';
const RELAY = 'relay@contoso.com';

function startTokens(extra: Partial<Parameters<typeof startFakeTokenEndpoint>[0]> = {}): Promise<FakeTokenEndpoint> {
  return startFakeTokenEndpoint({
    tenantId: TENANT,
    clients: { [SECRET_APP]: { secret: 'correct horse' }, [CERT_APP]: { certPem: clientCert } },
    ...extra,
  });
}

/** The MSAL configuration the product's token provider uses against the fake. */
function msalApp(tokens: FakeTokenEndpoint, auth: Partial<Configuration['auth']> & { clientId: string }, network = new CaTrustingNetworkClient(caPem)) {
  const app = new ConfidentialClientApplication({
    auth: {
      authority: tokens.authority,
      knownAuthorities: [tokens.knownAuthority],
      authorityMetadata: tokens.authorityMetadata,
      ...auth,
    },
    system: { networkClient: network },
  });
  return { app, network };
}

async function msalToken(tokens: FakeTokenEndpoint): Promise<string> {
  const { app } = msalApp(tokens, { clientId: SECRET_APP, clientSecret: 'correct horse' });
  const result = await app.acquireTokenByClientCredential({ scopes: [EXCHANGE_ONLINE_SCOPE] });
  assert.ok(result?.accessToken);
  return result.accessToken;
}

function exoOptions(tokens: FakeTokenEndpoint, extra: FakeExchangeOnlineOptions = {}): FakeExchangeOnlineOptions {
  return {
    tokenVerifier: tokens,
    internalDomains: ['contoso.com'],
    mailboxes: [RELAY, 'alice@contoso.com', 'bob@contoso.com'],
    sendAs: { [RELAY]: ['scanner@contoso.com'] },
    ...extra,
  };
}

type Auth = SMTPTransport.Options['auth'];

function transport(exo: FakeExchangeOnline, auth?: Auth) {
  return nodemailer.createTransport({
    host: '127.0.0.1',
    port: exo.port,
    secure: false,
    requireTLS: true,
    tls: { ca: caPem },
    name: 'client.test',
    ...(auth ? { auth } : {}),
  });
}

const oauth = (accessToken: string, user = RELAY): Auth => ({ type: 'OAuth2', user, accessToken });

function rawMessage(from: string, to: string, body = 'Hello'): Buffer {
  return Buffer.from(
    `From: Scanner <${from}>\r\nTo: ${to}\r\nSubject: scan\r\nMessage-ID: <${Math.random().toString(36).slice(2)}@client.test>\r\n` +
      `MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n${body}\r\n.a line that starts with a dot\r\n..two dots\r\nbye\r\n`,
    'utf8',
  );
}

interface SmtpError extends Error {
  code?: string;
  responseCode?: number;
  response?: string;
}

async function sendExpectingError(send: Promise<unknown>): Promise<SmtpError> {
  try {
    await send;
  } catch (err) {
    return err as SmtpError;
  }
  assert.fail('expected the send to fail');
}

function xoauth2(user: string, token: string): string {
  return Buffer.from(`user=${user}\x01auth=Bearer ${token}\x01\x01`, 'utf8').toString('base64');
}

// ---------------------------------------------------------------- token endpoint + MSAL

test('MSAL with a client secret gets an Exchange Online token without any discovery request', async () => {
  const tokens = await startTokens();
  try {
    const { app, network } = msalApp(tokens, { clientId: SECRET_APP, clientSecret: 'correct horse' });
    const result = await app.acquireTokenByClientCredential({ scopes: [EXCHANGE_ONLINE_SCOPE] });
    assert.ok(result);
    assert.equal(result.tokenType, 'Bearer');
    const verdict = tokens.verifyAccessToken(result.accessToken);
    assert.ok(verdict.ok, verdict.ok ? '' : verdict.reason);
    assert.equal(verdict.claims.aud, 'https://outlook.office365.com');
    assert.equal(verdict.claims.appid, SECRET_APP);
    assert.equal(verdict.claims.azp, SECRET_APP);
    assert.equal(verdict.claims.tid, TENANT);
    assert.deepEqual(verdict.claims.roles, ['SMTP.SendAsApp']);
    assert.equal(verdict.claims.exp - verdict.claims.iat, 3600);

    // a second call is served from MSAL's cache
    const again = await app.acquireTokenByClientCredential({ scopes: [EXCHANGE_ONLINE_SCOPE] });
    assert.equal(again?.accessToken, result.accessToken);

    assert.equal(tokens.tokenRequests, 1);
    assert.deepEqual(tokens.requests, [{ clientId: SECRET_APP, grantKind: 'secret', status: 200 }]);
    assert.deepEqual(tokens.httpRequests.map((r) => `${r.method} ${r.path}`), [`POST /${TENANT}/oauth2/v2.0/token`]);
    assert.equal(network.calls.length, 1);
    assert.match(network.calls[0]?.url ?? '', new RegExp(`^${tokens.tokenEndpoint}\\?client-request-id=`));
  } finally {
    await tokens.close();
  }
});

test('MSAL with a certificate: SHA-256 thumbprint (PS256, x5t#S256) and SHA-1 thumbprint (RS256, x5t)', async () => {
  const tokens = await startTokens();
  try {
    const sha256 = msalApp(tokens, {
      clientId: CERT_APP,
      clientCertificate: { thumbprintSha256: clientCertThumbprintSha256, privateKey: clientKey, x5c: clientCert },
    });
    const a = await sha256.app.acquireTokenByClientCredential({ scopes: [EXCHANGE_ONLINE_SCOPE] });
    assert.ok(a && tokens.verifyAccessToken(a.accessToken).ok);

    const sha1 = msalApp(tokens, { clientId: CERT_APP, clientCertificate: { thumbprint: clientCertThumbprint, privateKey: clientKey } });
    const b = await sha1.app.acquireTokenByClientCredential({ scopes: [EXCHANGE_ONLINE_SCOPE] });
    assert.ok(b && tokens.verifyAccessToken(b.accessToken).ok);

    assert.deepEqual(tokens.requests, [
      { clientId: CERT_APP, grantKind: 'assertion', status: 200 },
      { clientId: CERT_APP, grantKind: 'assertion', status: 200 },
    ]);
    assert.equal(tokens.tokenRequests, 2);
  } finally {
    await tokens.close();
  }
});

test('token endpoint refuses bad credentials the way Entra ID does', async () => {
  const tokens = await startTokens();
  try {
    const wrongSecret = msalApp(tokens, { clientId: SECRET_APP, clientSecret: 'wrong' });
    await assert.rejects(wrongSecret.app.acquireTokenByClientCredential({ scopes: [EXCHANGE_ONLINE_SCOPE] }), (err: Error & { errorCode?: string }) => {
      assert.equal(err.errorCode, 'invalid_client');
      assert.match(err.message, /AADSTS7000215: Invalid client secret provided/);
      return true;
    });

    // right thumbprint, wrong private key: the signature does not verify against the registered certificate
    const wrongKey = msalApp(tokens, { clientId: CERT_APP, clientCertificate: { thumbprintSha256: clientCertThumbprintSha256, privateKey: serverKey } });
    await assert.rejects(wrongKey.app.acquireTokenByClientCredential({ scopes: [EXCHANGE_ONLINE_SCOPE] }), (err: Error & { errorCode?: string }) => {
      assert.equal(err.errorCode, 'invalid_client');
      assert.match(err.message, /AADSTS7000274/);
      return true;
    });

    // a secret for the app that only has a certificate
    const noSecret = msalApp(tokens, { clientId: CERT_APP, clientSecret: 'anything' });
    await assert.rejects(noSecret.app.acquireTokenByClientCredential({ scopes: [EXCHANGE_ONLINE_SCOPE] }), /AADSTS7000215/);

    const unknownApp = msalApp(tokens, { clientId: 'not-registered', clientSecret: 'x' });
    await assert.rejects(unknownApp.app.acquireTokenByClientCredential({ scopes: [EXCHANGE_ONLINE_SCOPE] }), (err: Error & { errorCode?: string }) => {
      assert.equal(err.errorCode, 'unauthorized_client');
      return true;
    });

    const wrongScope = msalApp(tokens, { clientId: SECRET_APP, clientSecret: 'correct horse' });
    await assert.rejects(wrongScope.app.acquireTokenByClientCredential({ scopes: ['https://graph.microsoft.com/.default'] }), (err: Error & { errorCode?: string }) => {
      assert.equal(err.errorCode, 'invalid_scope');
      return true;
    });

    assert.equal(tokens.tokenRequests, 0);
    assert.deepEqual(
      tokens.requests.map((r) => [r.grantKind, r.status, r.error]),
      [
        ['secret', 401, 'invalid_client'],
        ['assertion', 401, 'invalid_client'],
        ['secret', 401, 'invalid_client'],
        ['secret', 400, 'unauthorized_client'],
        ['secret', 400, 'invalid_scope'],
      ],
    );
  } finally {
    await tokens.close();
  }
});

test('MSAL without authorityMetadata discovers the endpoints from the fake', async () => {
  const tokens = await startTokens();
  try {
    const network = new CaTrustingNetworkClient(caPem);
    const app = new ConfidentialClientApplication({
      auth: { clientId: SECRET_APP, clientSecret: 'correct horse', authority: tokens.authority, knownAuthorities: [tokens.knownAuthority] },
      system: { networkClient: network },
    });
    const result = await app.acquireTokenByClientCredential({ scopes: [EXCHANGE_ONLINE_SCOPE] });
    assert.ok(result && tokens.verifyAccessToken(result.accessToken).ok);
    assert.deepEqual(tokens.httpRequests.map((r) => `${r.method} ${r.path}`), [
      `GET /${TENANT}/v2.0/.well-known/openid-configuration`,
      `POST /${TENANT}/oauth2/v2.0/token`,
    ]);
    assert.ok(network.calls.every((c) => c.url.startsWith(`${tokens.url}/`)), JSON.stringify(network.calls));
  } finally {
    await tokens.close();
  }
});

test('token endpoint: scripted failures, then down, then back; MSAL caches a 5xx as a throttle', async () => {
  const tokens = await startTokens();
  try {
    tokens.failNext(503, { error: 'temporarily_unavailable', error_description: 'AADSTS90033: A transient error has occurred. Please try again.', error_codes: [90033] });
    const first = msalApp(tokens, { clientId: SECRET_APP, clientSecret: 'correct horse' });
    await assert.rejects(first.app.acquireTokenByClientCredential({ scopes: [EXCHANGE_ONLINE_SCOPE] }), (err: Error & { errorCode?: string }) => {
      assert.equal(err.errorCode, 'temporarily_unavailable');
      return true;
    });
    // Same app, same request: MSAL answers from its throttling cache (60 s after a 429/5xx, or
    // Retry-After) without asking the server again; that error's errorCode is the error_codes.
    await assert.rejects(first.app.acquireTokenByClientCredential({ scopes: [EXCHANGE_ONLINE_SCOPE] }), (err: Error & { errorCode?: string }) => {
      assert.equal(err.errorCode, '90033');
      assert.match(err.message, /AADSTS90033/);
      return true;
    });
    assert.equal(first.network.calls.length, 1);

    tokens.setDown(true);
    const second = msalApp(tokens, { clientId: SECRET_APP, clientSecret: 'correct horse' });
    await assert.rejects(second.app.acquireTokenByClientCredential({ scopes: [EXCHANGE_ONLINE_SCOPE] }), (err: Error & { errorCode?: string }) => {
      assert.equal(err.errorCode, 'network_error');
      return true;
    });
    tokens.setDown(false);
    const third = await second.app.acquireTokenByClientCredential({ scopes: [EXCHANGE_ONLINE_SCOPE] });
    assert.ok(third && tokens.verifyAccessToken(third.accessToken).ok);
    assert.equal(tokens.tokenRequests, 1);
    assert.deepEqual(tokens.requests.map((r) => r.status), [503, 200]);
  } finally {
    await tokens.close();
  }
});

test('verifyAccessToken checks signature, expiry, audience and role', async () => {
  let clock = Date.parse('2026-06-01T00:00:00Z');
  const tokens = await startTokens({ now: () => clock, tokenLifetimeSeconds: 600 });
  try {
    const good = tokens.issueToken(SECRET_APP);
    assert.equal(tokens.verifyAccessToken(good).ok, true);

    const reason = (t: string) => {
      const v = tokens.verifyAccessToken(t);
      return v.ok ? 'ok' : v.reason;
    };
    assert.match(reason(tokens.issueToken(SECRET_APP, { aud: 'https://graph.microsoft.com' })), /audience/);
    assert.match(reason(tokens.issueToken(SECRET_APP, { roles: ['Mail.Send'] })), /SMTP\.SendAsApp/);
    assert.match(reason(tokens.issueToken(SECRET_APP, { tid: 'other-tenant' })), /tenant/);
    const [h, p] = good.split('.');
    const forged = `${h}.${Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(p ?? '', 'base64url').toString()), roles: ['SMTP.SendAsApp', 'x'] })).toString('base64url')}.${good.split('.')[2]}`;
    assert.match(reason(forged), /signature/);
    assert.match(reason('not-a-token'), /not a JWT/);

    clock += 600_000;
    assert.match(reason(good), /expired/);
  } finally {
    await tokens.close();
  }
});

// ---------------------------------------------------------------- fake Exchange Online

test('EHLO and AUTH as on smtp.office365.com: AUTH only inside TLS, 530 5.7.0 before STARTTLS', async () => {
  const tokens = await startTokens();
  const exo = await startFakeExchangeOnline(exoOptions(tokens));
  try {
    const { dialog, greeting } = await SmtpDialog.open(exo.port);
    assert.equal(greeting.code, 220);
    assert.match(greeting.line, /^220 fake\.outlook\.office365\.com Microsoft ESMTP MAIL Service ready at /);

    const plain = await dialog.send('EHLO client.test');
    assert.equal(plain.code, 250);
    assert.equal(plain.lines[0], 'fake.outlook.office365.com Hello [127.0.0.1]');
    for (const ext of ['SIZE 157286400', 'PIPELINING', '8BITMIME', 'SMTPUTF8', 'STARTTLS', 'ENHANCEDSTATUSCODES']) {
      assert.ok(plain.lines.includes(ext), `${ext} in ${JSON.stringify(plain.lines)}`);
    }
    assert.ok(!plain.lines.some((l) => l.startsWith('AUTH')), 'no AUTH before STARTTLS');

    assert.equal((await dialog.send('AUTH LOGIN')).line, '530 5.7.0 Must issue a STARTTLS command first');
    assert.equal((await dialog.send('MAIL FROM:<relay@contoso.com>')).line, '530 5.7.57 Client not authenticated to send mail');

    const secure = await dialog.ehloTls(caPem);
    assert.ok(secure.lines.includes('AUTH LOGIN XOAUTH2'), JSON.stringify(secure.lines));
    assert.ok(!secure.lines.includes('STARTTLS'));
    assert.equal((await dialog.send('AUTH PLAIN')).line, '504 5.7.4 Unrecognized authentication type');
    assert.equal((await dialog.send('QUIT')).line, '221 2.0.0 Service closing transmission channel');
    await dialog.closed;
  } finally {
    await exo.close();
    await tokens.close();
  }
});

test('XOAUTH2 with a token from MSAL: two-step and one-line forms get 235, bad token 535 5.7.3', async () => {
  const tokens = await startTokens();
  const exo = await startFakeExchangeOnline(exoOptions(tokens));
  try {
    const token = await msalToken(tokens);

    const twoStep = (await SmtpDialog.open(exo.port)).dialog;
    await twoStep.ehloTls(caPem);
    assert.equal((await twoStep.send('AUTH XOAUTH2')).line, '334');
    assert.equal((await twoStep.send(xoauth2(RELAY, token))).line, '235 2.7.0 Authentication successful');
    assert.equal((await twoStep.send('MAIL FROM:<relay@contoso.com>')).line, '250 2.1.0 Sender OK');
    assert.equal((await twoStep.send('RCPT TO:<alice@contoso.com>')).line, '250 2.1.5 Recipient OK');
    await twoStep.close();

    const oneLine = (await SmtpDialog.open(exo.port)).dialog;
    await oneLine.ehloTls(caPem);
    assert.equal((await oneLine.send(`AUTH XOAUTH2 ${xoauth2(RELAY, token)}`)).line, '235 2.7.0 Authentication successful');
    await oneLine.close();

    const bad = (await SmtpDialog.open(exo.port)).dialog;
    await bad.ehloTls(caPem);
    await bad.send('AUTH XOAUTH2');
    assert.equal((await bad.send(xoauth2(RELAY, `${token.slice(0, -4)}AAAA`))).line, '535 5.7.3 Authentication unsuccessful');
    await bad.close();

    // nodemailer's one-line XOAUTH2, a token the identity platform never issued
    const forged = tokens.issueToken(SECRET_APP, { aud: 'https://graph.microsoft.com' });
    const err = await sendExpectingError(transport(exo, oauth(forged)).sendMail({ envelope: { from: RELAY, to: ['alice@contoso.com'] }, raw: rawMessage(RELAY, 'alice@contoso.com') }));
    assert.equal(err.code, 'EAUTH');
    assert.equal(err.responseCode, 535);
    assert.equal(err.response, '535 5.7.3 Authentication unsuccessful');

    assert.deepEqual(
      exo.authAttempts.map((a) => [a.method, a.user, a.ok, a.reply]),
      [
        ['XOAUTH2', RELAY, true, '235 2.7.0 Authentication successful'],
        ['XOAUTH2', RELAY, true, '235 2.7.0 Authentication successful'],
        ['XOAUTH2', RELAY, false, '535 5.7.3 Authentication unsuccessful'],
        ['XOAUTH2', RELAY, false, '535 5.7.3 Authentication unsuccessful'],
      ],
    );
    assert.match(exo.authAttempts[2]?.reason ?? '', /signature/);
    assert.match(exo.authAttempts[3]?.reason ?? '', /audience/);
  } finally {
    await exo.close();
    await tokens.close();
  }
});

test('nodemailer raw + envelope over XOAUTH2: captured bytes are exactly the sent bytes', async () => {
  const tokens = await startTokens();
  const exo = await startFakeExchangeOnline(exoOptions(tokens));
  try {
    const token = await msalToken(tokens);
    const raw = rawMessage(RELAY, 'alice@contoso.com, ext@example.org');
    const info = await transport(exo, oauth(token)).sendMail({ envelope: { from: RELAY, to: ['alice@contoso.com', 'ext@example.org'] }, raw });
    assert.deepEqual(info.accepted, ['alice@contoso.com', 'ext@example.org']);
    assert.match(info.response, /^250 2\.0\.0 OK <[0-9A-F]{32}@fake\.outlook\.office365\.com> \[Hostname=fake\.outlook\.office365\.com\] Queued mail for delivery$/);

    const [msg] = await exo.waitForMessages(1);
    assert.ok(msg);
    assert.equal(msg.mailFrom, RELAY);
    assert.deepEqual(msg.rcptTo, ['alice@contoso.com', 'ext@example.org']);
    assert.deepEqual(msg.auth, { method: 'XOAUTH2', user: RELAY, appId: SECRET_APP });
    assert.equal(msg.sha256, createHash('sha256').update(raw).digest('hex'));
    assert.ok(msg.raw.equals(raw));
    assert.ok(info.response.includes(msg.queueId));
    assert.equal(exo.connections, 1);
  } finally {
    await exo.close();
    await tokens.close();
  }
});

test('MAIL before AUTH gets 530 5.7.57', async () => {
  const tokens = await startTokens();
  const exo = await startFakeExchangeOnline(exoOptions(tokens));
  try {
    const err = await sendExpectingError(transport(exo).sendMail({ envelope: { from: RELAY, to: ['alice@contoso.com'] }, raw: rawMessage(RELAY, 'alice@contoso.com') }));
    assert.equal(err.responseCode, 530);
    assert.equal(err.response, '530 5.7.57 Client not authenticated to send mail');
    assert.equal(exo.messages.length, 0);
  } finally {
    await exo.close();
    await tokens.close();
  }
});

test('send-as: MAIL FROM and the From header are checked against the mailbox (550 5.7.60)', async () => {
  const tokens = await startTokens();
  const exo = await startFakeExchangeOnline(exoOptions(tokens));
  try {
    const token = await msalToken(tokens);
    const t = transport(exo, oauth(token));

    const envelopeDenied = await sendExpectingError(t.sendMail({ envelope: { from: 'ceo@contoso.com', to: ['alice@contoso.com'] }, raw: rawMessage('ceo@contoso.com', 'alice@contoso.com') }));
    assert.equal(envelopeDenied.responseCode, 550);
    assert.equal(envelopeDenied.response, '550 5.7.60 SMTP; Client does not have permissions to send as this sender');

    // envelope fine, From header not: refused after DATA
    const headerDenied = await sendExpectingError(t.sendMail({ envelope: { from: RELAY, to: ['alice@contoso.com'] }, raw: rawMessage('scanner@printer.local', 'alice@contoso.com') }));
    assert.equal(headerDenied.responseCode, 550);
    assert.equal(headerDenied.response, '550 5.7.60 SMTP; Client does not have permissions to send as this sender');

    // a SendAs grant, and the null sender
    await t.sendMail({ envelope: { from: 'scanner@contoso.com', to: ['alice@contoso.com'] }, raw: rawMessage('Scanner@Contoso.com', 'alice@contoso.com') });
    await t.sendMail({ envelope: { from: '', to: ['alice@contoso.com'] }, raw: rawMessage(RELAY, 'alice@contoso.com') });
    const msgs = await exo.waitForMessages(2);
    assert.deepEqual(msgs.map((m) => m.mailFrom), ['scanner@contoso.com', '']);
  } finally {
    await exo.close();
    await tokens.close();
  }
});

test('unknown internal recipient gets 550 5.1.10, the others still get the message', async () => {
  const tokens = await startTokens();
  const exo = await startFakeExchangeOnline(exoOptions(tokens));
  try {
    const token = await msalToken(tokens);
    const info = await transport(exo, oauth(token)).sendMail({
      envelope: { from: RELAY, to: ['alice@contoso.com', 'nobody@contoso.com', 'someone@example.net'] },
      raw: rawMessage(RELAY, 'alice@contoso.com'),
    });
    assert.deepEqual(info.accepted, ['alice@contoso.com', 'someone@example.net']);
    assert.deepEqual(info.rejected, ['nobody@contoso.com']);
    const rejectedErrors = (info as { rejectedErrors?: SmtpError[] }).rejectedErrors ?? [];
    assert.equal(rejectedErrors[0]?.responseCode, 550);
    assert.equal(rejectedErrors[0]?.response, '550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup');
    const [msg] = await exo.waitForMessages(1);
    assert.deepEqual(msg?.rcptTo, ['alice@contoso.com', 'someone@example.net']);
  } finally {
    await exo.close();
    await tokens.close();
  }
});

test('552 5.3.4 for a message over the limit, at MAIL FROM SIZE= and after DATA', async () => {
  const tokens = await startTokens();
  const exo = await startFakeExchangeOnline(exoOptions(tokens, { maxMessageSize: 2_000 }));
  try {
    const token = await msalToken(tokens);
    const t = transport(exo, oauth(token));
    const big = rawMessage(RELAY, 'alice@contoso.com', 'x'.repeat(70).concat('\r\n').repeat(40));

    const afterData = await sendExpectingError(t.sendMail({ envelope: { from: RELAY, to: ['alice@contoso.com'] }, raw: big }));
    assert.equal(afterData.responseCode, 552);
    assert.equal(afterData.response, '552 5.3.4 Message size exceeds fixed maximum message size');

    const dialog = (await SmtpDialog.open(exo.port)).dialog;
    await dialog.ehloTls(caPem);
    assert.equal((await dialog.send(`AUTH XOAUTH2 ${xoauth2(RELAY, token)}`)).code, 235);
    assert.equal((await dialog.send('MAIL FROM:<relay@contoso.com> SIZE=2001')).line, '552 5.3.4 Message size exceeds fixed maximum message size');
    // over EXO's advertised SIZE the library's own check answers, with the same text
    assert.equal((await dialog.send('MAIL FROM:<relay@contoso.com> SIZE=157286401')).line, '552 5.3.4 Message size exceeds fixed maximum message size');
    assert.equal((await dialog.send('MAIL FROM:<relay@contoso.com> SIZE=2000')).code, 250);
    await dialog.close();

    const small = rawMessage(RELAY, 'alice@contoso.com');
    await t.sendMail({ envelope: { from: RELAY, to: ['alice@contoso.com'] }, raw: small });
    assert.equal((await exo.waitForMessages(1))[0]?.sha256, createHash('sha256').update(small).digest('hex'));
  } finally {
    await exo.close();
    await tokens.close();
  }
});

test('scripted faults are consumed in order, per stage', async () => {
  const tokens = await startTokens();
  const exo = await startFakeExchangeOnline(exoOptions(tokens));
  try {
    const token = await msalToken(tokens);
    const t = transport(exo, oauth(token));
    const send = () => t.sendMail({ envelope: { from: RELAY, to: ['alice@contoso.com'] }, raw: rawMessage(RELAY, 'alice@contoso.com') });

    exo.failNext('data', '451 4.7.500 Server busy. Please try again later.', 2);
    for (let i = 0; i < 2; i++) {
      const err = await sendExpectingError(send());
      assert.equal(err.responseCode, 451);
      assert.equal(err.response, '451 4.7.500 Server busy. Please try again later.');
    }
    exo.failNext('mail', '421 4.3.2 Service not available');
    assert.equal((await sendExpectingError(send())).response, '421 4.3.2 Service not available');
    exo.failNext('rcpt', '452 4.5.3 Too many recipients');
    assert.equal((await sendExpectingError(send())).responseCode, 452);
    exo.failNext('auth', '454 4.7.0 Temporary authentication failure');
    assert.equal((await sendExpectingError(send())).response, '454 4.7.0 Temporary authentication failure');

    exo.failNext('connect', '421 4.3.2 The maximum number of concurrent server connections has exceeded a limit, closing transmission channel');
    const { dialog, greeting } = await SmtpDialog.probe(exo.port);
    assert.equal(greeting?.code, 421);
    await dialog.closed;

    await send();
    await exo.waitForMessages(1);
    assert.equal(exo.messages.length, 1);
    assert.throws(() => exo.failNext('data', 'busy'), /not an SMTP reply/);
  } finally {
    await exo.close();
    await tokens.close();
  }
});

test('a fourth concurrent session for one mailbox gets 432 4.3.2 at AUTH', async () => {
  const tokens = await startTokens();
  const exo = await startFakeExchangeOnline(exoOptions(tokens));
  try {
    const token = await msalToken(tokens);
    const dialogs: SmtpDialog[] = [];
    for (let i = 0; i < 4; i++) {
      const d = (await SmtpDialog.open(exo.port)).dialog;
      await d.ehloTls(caPem);
      dialogs.push(d);
    }
    const replies = [];
    for (const d of dialogs) replies.push((await d.send(`AUTH XOAUTH2 ${xoauth2(RELAY, token)}`)).line);
    assert.deepEqual(replies, [
      '235 2.7.0 Authentication successful',
      '235 2.7.0 Authentication successful',
      '235 2.7.0 Authentication successful',
      '432 4.3.2 Concurrent connections limit exceeded.',
    ]);
    assert.equal(exo.throttled, 1);
    assert.equal(exo.maxConcurrentSessions, 4);
    assert.equal(exo.maxConcurrentSessionsPerMailbox, 3);

    // a slot frees when a session ends
    assert.equal(exo.activeSessions(RELAY), 3);
    await dialogs[0]?.send('QUIT');
    await exo.waitFor(() => exo.activeSessions(RELAY) === 2, 5_000, 'the session to end');
    const late = (await SmtpDialog.open(exo.port)).dialog;
    await late.ehloTls(caPem);
    assert.equal((await late.send(`AUTH XOAUTH2 ${xoauth2(RELAY, token)}`)).line, '235 2.7.0 Authentication successful');
    await Promise.all([...dialogs.slice(1), late].map((d) => d.close()));
    await exo.waitFor(() => exo.activeSessions() === 0, 5_000, 'all sessions to end');
    assert.equal(exo.activeSessions(RELAY), 0);
  } finally {
    await exo.close();
    await tokens.close();
  }
});

test('messagesPerMinute: the message over the limit gets 432 4.3.2 STOREDRV at the end of DATA', async () => {
  let clock = Date.parse('2026-06-01T09:00:00Z');
  const tokens = await startTokens();
  const exo = await startFakeExchangeOnline(exoOptions(tokens, { messagesPerMinute: 2, now: () => clock }));
  try {
    const token = await msalToken(tokens);
    const t = transport(exo, oauth(token));
    const send = () => t.sendMail({ envelope: { from: RELAY, to: ['alice@contoso.com'] }, raw: rawMessage(RELAY, 'alice@contoso.com') });
    await send();
    clock += 30_000;
    await send();
    const err = await sendExpectingError(send());
    assert.equal(err.responseCode, 432);
    assert.equal(err.response, '432 4.3.2 STOREDRV.ClientSubmit; sender thread limit exceeded.');
    assert.equal(exo.throttled, 1);
    clock += 30_001; // the first message left the window
    await send();
    assert.equal((await exo.waitForMessages(3)).length, 3);
  } finally {
    await exo.close();
    await tokens.close();
  }
});

test('basic auth: LOGIN works, wrong password 535 5.7.3, disabled tenant 535 5.7.139', async () => {
  const tokens = await startTokens();
  const exo = await startFakeExchangeOnline(exoOptions(tokens, { basicUsers: { 'printer@contoso.com': 'p@ss' } }));
  const disabled = await startFakeExchangeOnline(exoOptions(tokens, { basicUsers: { 'printer@contoso.com': 'p@ss' }, basicAuthDisabled: true }));
  try {
    const mail = { envelope: { from: 'printer@contoso.com', to: ['alice@contoso.com'] }, raw: rawMessage('printer@contoso.com', 'alice@contoso.com') };
    await transport(exo, { user: 'printer@contoso.com', pass: 'p@ss' }).sendMail(mail);
    assert.deepEqual((await exo.waitForMessages(1))[0]?.auth, { method: 'LOGIN', user: 'printer@contoso.com' });

    const wrong = await sendExpectingError(transport(exo, { user: 'printer@contoso.com', pass: 'nope' }).sendMail(mail));
    assert.equal(wrong.response, '535 5.7.3 Authentication unsuccessful');

    const off = await sendExpectingError(transport(disabled, { user: 'printer@contoso.com', pass: 'p@ss' }).sendMail(mail));
    assert.equal(off.responseCode, 535);
    assert.equal(off.response, '535 5.7.139 Authentication unsuccessful, basic authentication is disabled.');
    assert.equal(disabled.authAttempts[0]?.reason, 'basic auth disabled');
  } finally {
    await disabled.close();
    await exo.close();
    await tokens.close();
  }
});

test('setDown closes new connections at once on the same port; setDown(false) restores', async () => {
  const tokens = await startTokens();
  const exo = await startFakeExchangeOnline(exoOptions(tokens));
  try {
    exo.setDown(true);
    const down = await SmtpDialog.probe(exo.port);
    assert.equal(down.greeting, null);
    await down.dialog.closed;
    const err = await sendExpectingError(transport(exo, oauth(await msalToken(tokens))).sendMail({ envelope: { from: RELAY, to: ['alice@contoso.com'] }, raw: rawMessage(RELAY, 'alice@contoso.com') }));
    assert.ok(err.code === 'ECONNECTION' || err.code === 'ESOCKET', `got ${err.code}`);
    assert.equal(exo.droppedConnections, 2);
    assert.equal(exo.connections, 0);

    exo.setDown(false);
    const up = await SmtpDialog.open(exo.port);
    assert.equal(up.greeting.code, 220);
    await up.dialog.close();
  } finally {
    await exo.close();
    await tokens.close();
  }
});

test('waitForMessages rejects with a clear error on timeout', async () => {
  const exo = await startFakeExchangeOnline({});
  try {
    await assert.rejects(exo.waitForMessages(1, 20), /waited 20 ms for 1 message\(s\); 0 message\(s\) accepted/);
  } finally {
    await exo.close();
  }
});
