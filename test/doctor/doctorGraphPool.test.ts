import assert from 'node:assert/strict';
import { createPublicKey } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { DOCTOR_EXIT } from '../../edge-agent/doctor/report.ts';
import type { UpstreamConfigInput } from '../../delivery/upstreamConfig.ts';
import { MAIL_SEND_ROLE, startFakeGraph, type FakeGraph } from '../../testbed/fakes/fakeGraph.ts';
import { startFakeTokenEndpoint, type FakeTokenEndpoint } from '../../testbed/fakes/fakeTokenEndpoint.ts';
import { startFakeExchangeOnline } from '../../testbed/fakes/fakeExchangeOnline.ts';
import { caPem } from '../../testbed/fakes/tlsFixtures.ts';
import { CLIENT_ID, RELAY_MAILBOX, startExchangeOnlineRig, type ExchangeOnlineRig } from '../../testbed/helpers/exchangeOnlineRig.ts';
import { doctor, line, mailboxSection } from '../../testbed/helpers/doctorRun.ts';

const TENANT = '11111111-2222-3333-4444-555555555555';
const SECRET = 'graph-secret-that-must-never-be-printed';
const MAILBOX = 'relay@contoso.com';
/** Mail.Send and the optional read permission for the Sent Items check, both consented. */
const FULL_APP = 'cccccccc-0000-0000-0000-00000000000c';
/** Mail.Send only. */
const SEND_ONLY_APP = 'dddddddd-0000-0000-0000-00000000000d';
/** No Graph permission consented and no RBAC assignment. */
const NO_SEND_APP = 'eeeeeeee-0000-0000-0000-00000000000e';
/** No role in its token: Mail.Send from an RBAC for Applications assignment on the mailbox. */
const RBAC_APP = 'ffffffff-0000-0000-0000-00000000000f';

describe('smarthost doctor, route graph, against the fake Graph and token endpoint', () => {
  let tokens: FakeTokenEndpoint;
  let graph: FakeGraph;
  const upstream = (clientId: string, overrides: { user?: string; scope?: string } = {}): UpstreamConfigInput => ({
    route: 'graph',
    host: '127.0.0.1',
    ca: caPem,
    graph: { baseUrl: graph.url },
    auth: { type: 'oauth2', tenantId: TENANT, clientId, clientSecret: SECRET, authority: tokens.url, scope: overrides.scope ?? 'https://graph.microsoft.com/.default', user: overrides.user ?? MAILBOX },
  });

  before(async () => {
    tokens = await startFakeTokenEndpoint({
      tenantId: TENANT,
      clients: {
        [FULL_APP]: { secret: SECRET, graphRoles: [MAIL_SEND_ROLE, 'Mail.ReadBasic.All'] },
        [SEND_ONLY_APP]: { secret: SECRET, graphRoles: [MAIL_SEND_ROLE] },
        [NO_SEND_APP]: { secret: SECRET, graphRoles: [] },
        [RBAC_APP]: { secret: SECRET, graphRoles: [] },
      },
    });
    graph = await startFakeGraph({
      mailboxes: [MAILBOX, 'hr@contoso.com'],
      publicKey: createPublicKey(tokens.publicKeyPem),
      rbac: { [RBAC_APP]: [MAILBOX] },
      sendAs: { [MAILBOX]: ['scanner@contoso.com'] },
    });
  });
  after(async () => {
    await graph.close();
    await tokens.close();
  });

  it('all fine: token, claims and the Sent Items search ok, send-as checked only by a test send, exit 0, nothing sent', async () => {
    const run = await doctor(upstream(FULL_APP));
    assert.equal(run.code, DOCTOR_EXIT.ok, run.out);
    for (const step of ['config', 'files', 'clock']) line(run.out, 'ok', step);
    assert.equal(line(run.out, 'ok', 'token'), `ok    token      issued for app ${FULL_APP}: tid=${TENANT} aud=https://graph.microsoft.com roles=[Mail.Send, Mail.ReadBasic.All] oid=${/oid=(\S+)/.exec(run.out)?.[1]}`);
    assert.equal(line(run.out, 'ok', 'claims'), 'ok    claims     tenant, audience and the Mail.Send role are right');
    assert.equal(line(run.out, 'ok', 'graph'), `ok    graph      ${new URL(graph.url).host} accepted the token and searched Sent Items of ${MAILBOX}: a retry after a lost answer looks there before resending`);
    assert.equal(
      line(run.out, 'info', 'send-as'),
      `info  send-as    ${MAILBOX}: not checked: a Mail.Send-only app has no Graph call that proves it may send as ${MAILBOX} short of sending, so the mailbox and each SendAs grant are checked only by a test send (--send-test ADDRESS)`,
    );
    assert.doesNotMatch(run.out, /FAIL|WARN|dns|tcp|starttls/);
    assert.equal(graph.sent.length, 0);
    assert.doesNotMatch(run.out, new RegExp(SECRET));
  });

  it('--send-test sends one message per send-as address through sendMail, exit 0', async () => {
    const before = graph.sent.length;
    const run = await doctor(upstream(FULL_APP), { clients: [{ name: 'scanner', address: '127.0.0.1', sendAs: 'scanner@contoso.com' }] }, { sendTestTo: 'you@contoso.com' });
    assert.equal(run.code, DOCTOR_EXIT.ok, run.out);
    const sendAs = run.out.split('\n').filter((l) => l.slice(6).startsWith('send-as'));
    assert.deepEqual(sendAs, [
      `ok    send-as    ${MAILBOX}: test message to you@contoso.com accepted (202 Accepted (Graph sendMail))`,
      'ok    send-as    scanner@contoso.com: test message to you@contoso.com accepted (202 Accepted (Graph sendMail))',
    ]);
    const sent = graph.sent.slice(before);
    assert.deepEqual(sent.map((m) => [m.mailbox, m.appId, /^From: <([^>]+)>/m.exec(m.mime.toString('latin1'))?.[1]]), [
      [MAILBOX, FULL_APP, MAILBOX],
      [MAILBOX, FULL_APP, 'scanner@contoso.com'],
    ]);
  });

  it('a token without Mail.Send: the API permission fix with the app id, exit 3, nothing sent', async () => {
    const before = graph.requests.length;
    const run = await doctor(upstream(NO_SEND_APP));
    assert.equal(run.code, DOCTOR_EXIT.blocked, run.out);
    assert.equal(
      line(run.out, 'FAIL', 'claims'),
      'FAIL  claims     the token has no Mail.Send role: the app lacks the Microsoft Graph application permission or its admin consent ' +
        '(an RBAC for Applications assignment for the mailbox does not show in the token: --send-test ADDRESS checks it by a test send)\n' +
        `                 fix: Entra admin center > App registrations > ${NO_SEND_APP} > API permissions > Add a permission > Microsoft Graph > Application permissions > Mail.Send, then "Grant admin consent"`,
    );
    assert.equal(graph.requests.length, before, 'no Graph request after a blocking problem');
  });

  it('no Mail.Send and --send-test: the test send is refused with the RBAC for Applications fix the Graph route names, exit 3', async () => {
    const run = await doctor(upstream(NO_SEND_APP), {}, { sendTestTo: 'you@contoso.com' });
    assert.equal(run.code, DOCTOR_EXIT.blocked, run.out);
    assert.match(line(run.out, 'WARN', 'claims'), /the token has no Mail\.Send role: .*the test send below checks it\)\n {17}fix: Entra admin center > App registrations > eeeeeeee/);
    const l = line(run.out, 'FAIL', 'send-as');
    assert.match(l, new RegExp(`^FAIL  send-as    ${MAILBOX}: sendMail refused: 535 5\\.7\\.3 Graph HTTP 403 ErrorAccessDenied: Access is denied\\. Check credentials and try again\\. \\(app ${NO_SEND_APP} has no Mail\\.Send permission for ${MAILBOX}\\)\n`));
    assert.match(
      l,
      new RegExp(
        ` {17}fix: RBAC for Applications for this mailbox only: New-ServicePrincipal -AppId ${NO_SEND_APP} .*New-ManagementRoleAssignment -App ${NO_SEND_APP} -Role "Application Mail\\.Send" -CustomResourceScope "smarthost ${MAILBOX}"; ` +
          'or give the app registration the Microsoft Graph application permission Mail\\.Send with admin consent',
      ),
    );
  });

  it('no Mail.Send in the token but an RBAC for Applications assignment: the test send passes, exit 0', async () => {
    const run = await doctor(upstream(RBAC_APP), {}, { sendTestTo: 'you@contoso.com' });
    assert.equal(run.code, DOCTOR_EXIT.ok, run.out);
    line(run.out, 'WARN', 'claims');
    assert.equal(line(run.out, 'ok', 'send-as'), `ok    send-as    ${MAILBOX}: test message to you@contoso.com accepted (202 Accepted (Graph sendMail))`);
  });

  it('Mail.Send without a read permission: the duplicate check cannot work, a warning naming Mail.ReadBasic.All, exit 0', async () => {
    const run = await doctor(upstream(SEND_ONLY_APP));
    assert.equal(run.code, DOCTOR_EXIT.ok, run.out);
    assert.equal(
      line(run.out, 'WARN', 'graph'),
      `WARN  graph      ${new URL(graph.url).host} accepted the token, but Sent Items of ${MAILBOX} could not be searched before a resend (HTTP 403 ErrorAccessDenied), so a message an earlier attempt may have sent can arrive twice\n` +
        `                 fix: give app ${SEND_ONLY_APP} the Microsoft Graph application permission Mail.ReadBasic.All (or Mail.Read) for the mailbox`,
    );
  });

  it('a mailbox Graph does not know: the Get-EXOMailbox fix of the Graph route, exit 3', async () => {
    const run = await doctor(upstream(FULL_APP, { user: 'nobody@contoso.com' }));
    assert.equal(run.code, DOCTOR_EXIT.blocked, run.out);
    assert.equal(
      line(run.out, 'FAIL', 'graph'),
      `FAIL  graph      ${new URL(graph.url).host} has no Exchange Online mailbox nobody@contoso.com (HTTP 404 ErrorInvalidUser)\n` +
        '                 fix: check upstream.auth.user (nobody@contoso.com): it must be an Exchange Online mailbox with a license (Get-EXOMailbox -Identity nobody@contoso.com); ' +
        'MailboxNotEnabledForRESTAPI means it is on-premises, inactive, soft-deleted or unlicensed',
    );
  });

  it('a pool of an SMTP mailbox and a Graph one: each checked by its own route under its heading, exit 0', async () => {
    const exo = await startFakeExchangeOnline({ tokenVerifier: tokens, internalDomains: ['contoso.com'], mailboxes: [MAILBOX, 'hr@contoso.com', 'you@contoso.com'] });
    try {
      const graphAuth = upstream(FULL_APP, { user: 'hr@contoso.com' }).auth;
      const run = await doctor({
        host: '127.0.0.1',
        port: exo.port,
        ca: caPem,
        graph: { baseUrl: graph.url },
        auth: { type: 'oauth2', tenantId: TENANT, clientId: FULL_APP, clientSecret: SECRET, authority: tokens.url, user: MAILBOX },
        mailboxes: [{ mailbox: MAILBOX }, { mailbox: 'hr@contoso.com', route: 'graph', auth: graphAuth }],
      });
      assert.equal(run.code, DOCTOR_EXIT.ok, run.out);
      const smtp = mailboxSection(run.out, MAILBOX);
      assert.match(smtp, /^== mailbox 1 of 2: relay@contoso\.com, route smtp, sends as relay@contoso\.com\n/);
      assert.equal(line(smtp, 'ok', 'auth'), `ok    auth       AUTH XOAUTH2 accepted as ${MAILBOX}`);
      const viaGraph = mailboxSection(run.out, 'hr@contoso.com');
      assert.match(viaGraph, /^== mailbox 2 of 2: hr@contoso\.com, route graph, sends as hr@contoso\.com\n/);
      assert.equal(line(viaGraph, 'ok', 'claims'), 'ok    claims     tenant, audience and the Mail.Send role are right');
      line(viaGraph, 'ok', 'graph');
      assert.doesNotMatch(viaGraph, /starttls|auth {7}/);
    } finally {
      await exo.close();
    }
  });

  it("a token for Exchange Online's SMTP instead of Graph: the scope fix, exit 3", async () => {
    const run = await doctor(upstream(FULL_APP, { scope: 'https://outlook.office365.com/.default' }));
    assert.equal(run.code, DOCTOR_EXIT.blocked, run.out);
    assert.equal(
      line(run.out, 'FAIL', 'claims'),
      "FAIL  claims     the token's audience is https://outlook.office365.com, not Microsoft Graph (https://graph.microsoft.com)\n" +
        '                 fix: set upstream.auth.scope to https://graph.microsoft.com/.default, or leave it out with upstream.preset set (the preset fills it for route graph)',
    );
  });
});

describe('smarthost doctor, a pool of mailboxes, against the fake Exchange Online', () => {
  let rig: ExchangeOnlineRig;
  before(async () => {
    rig = await startExchangeOnlineRig();
  });
  after(async () => {
    await rig.close();
  });

  const pool = (secondSecret: string): UpstreamConfigInput => {
    const auth = rig.upstream().auth;
    assert.ok(auth?.type === 'oauth2');
    return rig.upstream({
      mailboxes: [
        { mailbox: RELAY_MAILBOX, sendAs: ['scanner@contoso.com'] },
        { mailbox: 'ops@contoso.com', auth: { ...auth, clientSecret: secondSecret, user: 'ops@contoso.com' } },
      ],
    });
  };
  const clients = { clients: [{ name: 'fax', address: '127.0.0.1', sendAs: 'FaxService@contoso.com' }] };

  it("each mailbox under its own heading; the second's wrong secret gets the AADSTS fix, the first is fine, exit 3", async () => {
    const run = await doctor(pool('the-secret-id-not-its-value'), clients);
    assert.equal(run.code, DOCTOR_EXIT.blocked, run.out);
    assert.deepEqual(run.out.split('\n').filter((l) => l.startsWith('==')), [
      `== mailbox 1 of 2: ${RELAY_MAILBOX}, route smtp, sends as ${RELAY_MAILBOX}, scanner@contoso.com, FaxService@contoso.com`,
      '== mailbox 2 of 2: ops@contoso.com, route smtp, sends as ops@contoso.com, FaxService@contoso.com',
    ]);
    const first = mailboxSection(run.out, RELAY_MAILBOX);
    assert.doesNotMatch(first, /FAIL|WARN/);
    assert.equal(line(first, 'ok', 'auth'), `ok    auth       AUTH XOAUTH2 accepted as ${RELAY_MAILBOX}`);
    assert.deepEqual(
      first.split('\n').filter((l) => l.slice(6).startsWith('send-as')).map((l) => l.slice(17).split(':')[0]),
      [RELAY_MAILBOX, 'scanner@contoso.com', 'FaxService@contoso.com'],
    );
    const second = mailboxSection(run.out, 'ops@contoso.com');
    assert.equal(
      line(second, 'FAIL', 'token'),
      'FAIL  token      AADSTS7000215: the client secret is wrong\n' +
        `                 fix: in Entra admin center > App registrations > ${CLIENT_ID} > Certificates & secrets, create a new client secret and put its Value (not its Secret ID) in upstream.mailboxes[1].auth.clientSecret`,
    );
    assert.doesNotMatch(second, /auth {7}|send-as/, 'nothing after the blocking problem of this mailbox');
  });

  it('a pool whose mailboxes are all fine: exit 0', async () => {
    const auth = rig.upstream().auth;
    assert.ok(auth?.type === 'oauth2');
    const run = await doctor(pool(auth.clientSecret ?? ''));
    assert.equal(run.code, DOCTOR_EXIT.ok, run.out);
    assert.equal(line(mailboxSection(run.out, 'ops@contoso.com'), 'ok', 'auth'), 'ok    auth       AUTH XOAUTH2 accepted as ops@contoso.com');
  });
});
