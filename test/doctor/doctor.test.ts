import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { TLSSocket } from 'node:tls';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { X509Certificate } from 'node:crypto';
import { DOCTOR_EXIT } from '../../edge-agent/doctor/report.ts';
import { main } from '../../cli/cli.ts';
import { CLIENT_ID, RELAY_MAILBOX, TENANT_ID, startExchangeOnlineRig, type ExchangeOnlineRig } from '../../testbed/helpers/exchangeOnlineRig.ts';
import { REPLIES } from '../../testbed/fakes/fakeExchangeOnline.ts';
import { caPem, clientCert, clientKey, serverCert, serverKey } from '../../testbed/fakes/tlsFixtures.ts';
import type { UpstreamConfigInput } from '../../delivery/upstreamConfig.ts';
import { doctor, line } from '../../testbed/helpers/doctorRun.ts';

/** A scripted SMTP server for what the fake Exchange Online never does (a firewall in between). */
async function scriptedServer(onCommand: (cmd: string, socket: Socket, upgrade: (s: TLSSocket) => void) => void): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => {});
    let active: Socket = socket;
    const listen = (s: Socket) => {
      let buffer = '';
      s.on('data', (chunk: Buffer) => {
        buffer += chunk.toString('latin1');
        let i;
        while ((i = buffer.indexOf('\r\n')) >= 0) {
          const cmd = buffer.slice(0, i);
          buffer = buffer.slice(i + 2);
          onCommand(cmd, active, (tls) => {
            s.removeAllListeners('data');
            active = tls;
            tls.on('error', () => {});
            listen(tls);
          });
        }
      });
    };
    listen(socket);
    socket.write('220 fake.firewall ESMTP\r\n');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

describe('smarthost doctor', () => {
  let rig: ExchangeOnlineRig;
  let dir: string;
  before(async () => {
    rig = await startExchangeOnlineRig();
    dir = await mkdtemp(join(tmpdir(), 'doctor-'));
  });
  after(async () => {
    await rig.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('all green: every step ok, exit 0', async () => {
    const run = await doctor(rig.upstream(), { clients: [{ name: 'fax', address: '127.0.0.1', sendAs: 'FaxService@contoso.com' }] });
    assert.equal(run.code, DOCTOR_EXIT.ok, run.out);
    for (const step of ['config', 'files', 'clock', 'dns', 'tcp', 'ehlo', 'starttls', 'tls', 'token', 'claims', 'auth']) line(run.out, 'ok', step);
    assert.match(line(run.out, 'ok', 'auth'), /AUTH XOAUTH2 accepted as relay@contoso\.com/);
    assert.match(run.out, /^ok {4}send-as {4}relay@contoso\.com: MAIL FROM accepted/m);
    assert.match(run.out, /^ok {4}send-as {4}FaxService@contoso\.com: MAIL FROM accepted/m);
    assert.match(line(run.out, 'ok', 'token'), /SMTP\.SendAsApp/);
    assert.doesNotMatch(run.out, /client-secret-value/);
  });

  it('config invalid: the CLI exits 1 before any check', async () => {
    const path = join(dir, 'bad.yaml');
    await writeFile(path, 'upstream:\n  host: 127.0.0.1\n  port: not-a-port\n');
    const code = await main(['doctor', '--config', path]);
    assert.equal(code, DOCTOR_EXIT.configInvalid);
  });

  it('unreadable file: names the key and the path, exit 3', async () => {
    const missing = join(dir, 'no-such-ca.pem');
    const run = await doctor(rig.upstream({ ca: missing }));
    assert.equal(run.code, DOCTOR_EXIT.blocked);
    const l = line(run.out, 'FAIL', 'files');
    assert.match(l, new RegExp(`upstream\\.ca: cannot read ${missing.replaceAll('/', '\\/')} \\(no such file\\)`));
    assert.match(l, /fix: make each file named readable/);
  });

  it('clock skew: warns with the NTP fix and goes on', async () => {
    const run = await doctor(rig.upstream(), {}, { now: () => Date.now() + 10 * 60_000 });
    assert.equal(run.code, DOCTOR_EXIT.ok, run.out);
    const l = line(run.out, 'WARN', 'clock');
    assert.match(l, /clock is (599|600|601) s ahead of the identity platform's/);
    assert.match(l, /fix: synchronise the clock with NTP: timedatectl set-ntp true/);
  });

  it('port closed: connection refused with the firewall fix, exit 3', async () => {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    await new Promise<void>((resolve) => server.close(() => resolve()));
    const run = await doctor(rig.upstream({ port }));
    assert.equal(run.code, DOCTOR_EXIT.blocked);
    const l = line(run.out, 'FAIL', 'tcp');
    assert.match(l, new RegExp(`127\\.0\\.0\\.1:${port} refused the connection`));
    assert.match(l, new RegExp(`fix: allow outbound TCP ${port} from this machine to 127\\.0\\.0\\.1.*Test-NetConnection 127\\.0\\.0\\.1 -Port ${port}`));
    assert.doesNotMatch(run.out, /ehlo/);
  });

  it('STARTTLS missing from EHLO: the firewall inspection hint, exit 3', async () => {
    const fw = await scriptedServer((cmd, s) => {
      if (/^EHLO/i.test(cmd)) s.write('250-fake.firewall Hello\r\n250-SIZE 1000\r\n250 8BITMIME\r\n');
      else if (/^QUIT/i.test(cmd)) s.end('221 bye\r\n');
      else s.write('500 5.5.1 unknown\r\n');
    });
    try {
      const run = await doctor(rig.upstream({ port: fw.port }));
      assert.equal(run.code, DOCTOR_EXIT.blocked);
      const l = line(run.out, 'FAIL', 'starttls');
      assert.match(l, /127\.0\.0\.1 did not offer STARTTLS in its EHLO reply/);
      assert.match(l, /fix: a firewall's SMTP inspection .*strips or refuses STARTTLS/);
    } finally {
      await fw.close();
    }
  });

  it('STARTTLS answered 5xx: the firewall inspection hint, exit 3', async () => {
    const fw = await scriptedServer((cmd, s) => {
      if (/^EHLO/i.test(cmd)) s.write('250-fake.firewall Hello\r\n250 STARTTLS\r\n');
      else if (/^STARTTLS/i.test(cmd)) s.write('554 5.7.3 Unable to initialize security subsystem\r\n');
      else if (/^QUIT/i.test(cmd)) s.end('221 bye\r\n');
      else s.write('500 5.5.1 unknown\r\n');
    });
    try {
      const run = await doctor(rig.upstream({ port: fw.port }));
      assert.equal(run.code, DOCTOR_EXIT.blocked);
      const l = line(run.out, 'FAIL', 'starttls');
      assert.match(l, /127\.0\.0\.1 answered STARTTLS with 554 5\.7\.3 Unable to initialize security subsystem/);
      assert.match(l, /fix: a firewall's SMTP inspection/);
    } finally {
      await fw.close();
    }
  });

  const tlsServer = (options: ConstructorParameters<typeof TLSSocket>[1]) =>
    scriptedServer((cmd, s, upgrade) => {
      if (/^EHLO/i.test(cmd)) s.write('250-fake.tls Hello\r\n250 STARTTLS\r\n');
      else if (/^STARTTLS/i.test(cmd)) {
        s.write('220 2.0.0 SMTP server ready\r\n');
        upgrade(new TLSSocket(s, { isServer: true, ...options }));
      } else s.write('500 5.5.1 unknown\r\n');
    });

  it('TLS older than 1.2: names the downgrade, exit 3', async () => {
    const srv = await tlsServer({ cert: serverCert, key: serverKey, minVersion: 'TLSv1', maxVersion: 'TLSv1.1', ciphers: 'DEFAULT@SECLEVEL=0' });
    try {
      const run = await doctor(rig.upstream({ port: srv.port }));
      assert.equal(run.code, DOCTOR_EXIT.blocked);
      const l = line(run.out, 'FAIL', 'tls');
      assert.match(l, /127\.0\.0\.1 offers no TLS 1\.2 or newer/);
      assert.match(l, /fix: Exchange Online speaks TLS 1\.2 and 1\.3: a TLS-inspecting proxy/);
    } finally {
      await srv.close();
    }
  });

  it('certificate not trusted (a self-signed one, as a TLS-inspecting proxy shows): names upstream.host and upstream.ca, exit 3', async () => {
    // The client certificate fixture is self-signed: not from the CA upstream.ca trusts.
    const srv = await tlsServer({ cert: clientCert, key: clientKey });
    try {
      const run = await doctor(rig.upstream({ port: srv.port }));
      assert.equal(run.code, DOCTOR_EXIT.blocked);
      const l = line(run.out, 'FAIL', 'tls');
      assert.match(l, /the certificate of 127\.0\.0\.1 is not valid for it \(DEPTH_ZERO_SELF_SIGNED_CERT/);
      assert.match(l, /fix: check that upstream\.host is the name in the server's certificate \(smtp\.office365\.com\)/);
    } finally {
      await srv.close();
    }
  });

  const aadstsCases: { name: string; setup: () => UpstreamConfigInput; problem: RegExp; fix: RegExp }[] = [
    {
      name: 'wrong secret (AADSTS7000215)',
      setup: () => rig.upstream({ auth: { ...oauth(rig), clientSecret: 'the-secret-id-not-its-value' } }),
      problem: /AADSTS7000215: the client secret is wrong/,
      fix: new RegExp(`App registrations > ${CLIENT_ID} > Certificates & secrets, create a new client secret and put its Value \\(not its Secret ID\\)`),
    },
    {
      name: 'expired secret (AADSTS7000222)',
      setup: () => {
        rig.tokens.failNext(401, { error: 'invalid_client', error_description: `AADSTS7000222: The provided client secret keys for app '${CLIENT_ID}' are expired.`, error_codes: [7000222] });
        return rig.upstream();
      },
      problem: /AADSTS7000222: the client secret has expired/,
      fix: new RegExp(`App registrations > ${CLIENT_ID} > Certificates & secrets, create a new client secret`),
    },
    {
      name: 'unknown app (AADSTS700016)',
      setup: () => rig.upstream({ auth: { ...oauth(rig), clientId: 'bbbbbbbb-0000-0000-0000-000000000002' } }),
      problem: new RegExp(`AADSTS700016: the app registration bbbbbbbb-0000-0000-0000-000000000002 was not found in the tenant ${TENANT_ID}`),
      fix: /check upstream\.auth\.clientId \(the Application \(client\) ID/,
    },
    {
      name: 'no admin consent (AADSTS65001)',
      setup: () => {
        rig.tokens.failNext(400, { error: 'invalid_grant', error_description: `AADSTS65001: The user or administrator has not consented to use the application with ID '${CLIENT_ID}'.`, error_codes: [65001] });
        return rig.upstream();
      },
      problem: new RegExp(`AADSTS65001: the app registration ${CLIENT_ID} has no admin consent`),
      fix: /API permissions, press "Grant admin consent" for Office 365 Exchange Online SMTP\.SendAsApp/,
    },
    {
      name: 'wrong tenant (AADSTS90002)',
      setup: () => rig.upstream({ auth: { ...oauth(rig), tenantId: '99999999-2222-3333-4444-555555555555' } }),
      problem: /AADSTS90002: the tenant 99999999-2222-3333-4444-555555555555 does not exist in this cloud/,
      fix: /check upstream\.auth\.tenantId \(Directory \(tenant\) ID/,
    },
  ];
  for (const c of aadstsCases) {
    it(`token: ${c.name} mapped to its fix, exit 3`, async () => {
      const run = await doctor(c.setup());
      assert.equal(run.code, DOCTOR_EXIT.blocked, run.out);
      const l = line(run.out, 'FAIL', 'token');
      assert.match(l, c.problem);
      assert.match(l, c.fix);
    });
  }

  it('token without the SMTP.SendAsApp role: the API permission fix with the app id, exit 3', async () => {
    rig.tokens.failNext(200, { token_type: 'Bearer', expires_in: 3600, access_token: rig.tokens.issueToken(CLIENT_ID, { roles: [] }) });
    const run = await doctor(rig.upstream());
    assert.equal(run.code, DOCTOR_EXIT.blocked);
    const l = line(run.out, 'FAIL', 'claims');
    assert.match(l, /the token has no SMTP\.SendAsApp role/);
    assert.match(l, new RegExp(`App registrations > ${CLIENT_ID} > API permissions > .*SMTP\\.SendAsApp, then "Grant admin consent"`));
  });

  it('token for the wrong audience: the scope fix, exit 3', async () => {
    rig.tokens.failNext(200, { token_type: 'Bearer', expires_in: 3600, access_token: rig.tokens.issueToken(CLIENT_ID, { aud: 'https://graph.microsoft.com' }) });
    const run = await doctor(rig.upstream());
    assert.equal(run.code, DOCTOR_EXIT.blocked);
    const l = line(run.out, 'FAIL', 'claims');
    assert.match(l, /the token's audience is https:\/\/graph\.microsoft\.com, not Exchange Online \(https:\/\/outlook\.office365\.com\)/);
    assert.match(l, /fix: set upstream\.auth\.scope to https:\/\/outlook\.office365\.com\/\.default/);
  });

  it('certificate credential expiring within 30 days: a warning with the renewal step, exit 0', async () => {
    const validTo = new X509Certificate(clientCert).validTo;
    const now = Date.parse(validTo) - 20 * 86_400_000 - 3_600_000;
    const { clientSecret: _secret, ...rest } = oauth(rig);
    const run = await doctor(rig.upstream({ auth: { ...rest, certificate: { cert: clientCert, key: clientKey } } }), {}, { now: () => now });
    const l = line(run.out, 'WARN', 'cert-cred');
    assert.match(l, /the certificate credential expires on \d{4}-\d{2}-\d{2} \(20 days left\)/);
    assert.match(l, new RegExp(`upload it in Entra admin center > App registrations > ${CLIENT_ID} > Certificates & secrets`));
  });

  it('AUTH 535 5.7.3: the service principal explanation with New-ServicePrincipal and Add-MailboxPermission, exit 3', async () => {
    rig.exo.failNext('auth', `${REPLIES.authFailed.code} ${REPLIES.authFailed.text}`);
    const run = await doctor(rig.upstream());
    assert.equal(run.code, DOCTOR_EXIT.blocked);
    const l = line(run.out, 'FAIL', 'auth');
    assert.match(l, /Exchange Online refused the token for relay@contoso\.com \(535 5\.7\.3 Authentication unsuccessful\): the app has no service principal/);
    assert.match(l, /the App Registration's object id instead of the Enterprise Application's/);
    assert.match(l, new RegExp(`New-ServicePrincipal -AppId ${CLIENT_ID} -ObjectId [0-9a-f-]{36} .*Add-MailboxPermission -Identity ${RELAY_MAILBOX} -User [0-9a-f-]{36} -AccessRights FullAccess`));
  });

  it('AUTH 535 5.7.139: the Set-CASMailbox fix for the mailbox, exit 3', async () => {
    rig.exo.failNext('auth', '535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Tenant.');
    const run = await doctor(rig.upstream());
    assert.equal(run.code, DOCTOR_EXIT.blocked);
    const l = line(run.out, 'FAIL', 'auth');
    assert.match(l, /AUTH XOAUTH2 as relay@contoso\.com refused: 535 5\.7\.139/);
    assert.match(l, new RegExp(`Set-CASMailbox -Identity ${RELAY_MAILBOX} -SmtpClientAuthenticationDisabled \\$false`));
  });

  it('MAIL FROM refused for a send-as address: the Add-RecipientPermission fix, exit 3', async () => {
    const run = await doctor(rig.upstream(), { clients: [{ name: 'copier', address: '127.0.0.1', sendAs: 'copier@contoso.com' }] });
    assert.equal(run.code, DOCTOR_EXIT.blocked);
    line(run.out, 'ok', 'auth');
    const l = line(run.out, 'FAIL', 'send-as');
    assert.match(l, /copier@contoso\.com: MAIL FROM refused: 550 5\.7\.60 SMTP; Client does not have permissions to send as this sender/);
    assert.match(l, new RegExp(`Add-RecipientPermission -Identity copier@contoso\\.com -AccessRights SendAs -Trustee ${RELAY_MAILBOX}`));
  });

  it('--send-test finds a SendAs grant missing at the end of DATA, exit 3', async () => {
    // Exchange Online takes MAIL FROM and checks SendAs on From after the message.
    rig.exo.failNext('data', `${REPLIES.sendAsDenied.code} ${REPLIES.sendAsDenied.text}`);
    const before = rig.exo.messages.length;
    const run = await doctor(rig.upstream(), {}, { sendTestTo: 'you@contoso.com' });
    assert.equal(run.code, DOCTOR_EXIT.blocked);
    const l = line(run.out, 'FAIL', 'send-as');
    assert.match(l, /relay@contoso\.com: DATA refused: 550 5\.7\.60/);
    assert.match(l, /SendAs/);
    assert.equal(rig.exo.messages.length, before);
  });

  it('--send-test sends one test message per send-as address', async () => {
    const before = rig.exo.messages.length;
    const run = await doctor(rig.upstream(), { clients: [{ name: 'fax', address: '127.0.0.1', sendAs: 'FaxService@contoso.com' }] }, { sendTestTo: 'you@contoso.com' });
    assert.equal(run.code, DOCTOR_EXIT.ok, run.out);
    assert.match(line(run.out, 'ok', 'send-as'), /relay@contoso\.com: test message to you@contoso\.com accepted/);
    assert.match(run.out, /FaxService@contoso\.com: test message to you@contoso\.com accepted/);
    assert.deepEqual(rig.exo.messages.slice(before).map((m) => m.mailFrom), ['relay@contoso.com', 'FaxService@contoso.com']);
  });
});

function oauth(rig: ExchangeOnlineRig) {
  const auth = rig.upstream().auth;
  if (auth?.type !== 'oauth2') throw new Error('the rig gives an oauth2 upstream');
  return auth;
}
