import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { classifyReply, type FailureKind, type UpstreamFailure } from '../../delivery/classifyReply.ts';

const EXCHANGE_DOC = new URL('../../docs/reference/exchange-online.md', import.meta.url);

interface ReplyCase {
  response: string;
  command?: string;
  kind: FailureKind;
  throttled: boolean;
}

/** Every reply quoted in exchange-online.md, byte for byte, and what it must mean. */
const DOCUMENTED_REPLIES: readonly ReplyCase[] = [
  { response: '550 5.7.64 TenantAttribution; Relay Access Denied', command: 'MAIL FROM', kind: 'config', throttled: false },
  { response: '550 5.7.30 Basic authentication is not supported for Client Submission.', command: 'AUTH LOGIN', kind: 'config', throttled: false },
  { response: '535 5.7.139 Authentication unsuccessful, basic authentication is disabled.', command: 'AUTH LOGIN', kind: 'config', throttled: false },
  { response: '535 5.7.3 Authentication unsuccessful', command: 'AUTH XOAUTH2', kind: 'config', throttled: false },
  { response: '530 5.7.57 Client not authenticated to send mail', command: 'MAIL FROM', kind: 'config', throttled: false },
  { response: '530 5.7.0 Must issue a STARTTLS command first', command: 'MAIL FROM', kind: 'config', throttled: false },
  { response: '5.7.3 STARTTLS is required to send mail', command: 'MAIL FROM', kind: 'config', throttled: false },
  {
    response: '535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Tenant.',
    command: 'AUTH XOAUTH2',
    kind: 'config',
    throttled: false,
  },
  {
    response: "535 5.7.139 Authentication unsuccessful, user is locked by your organization's security defaults policy.",
    command: 'AUTH LOGIN',
    kind: 'config',
    throttled: false,
  },
  { response: '550 5.7.60 SMTP; Client does not have permissions to send as this sender', command: 'DATA', kind: 'config', throttled: false },
  {
    response: '554 5.2.0 STOREDRV.Submission.Exception:SendAsDeniedException.MapiExceptionSendAsDenied; ...',
    command: 'DATA',
    kind: 'config',
    throttled: false,
  },
  { response: '554 5.2.252 SendAsDenied; X not allowed to send as Y; STOREDRV...', command: 'DATA', kind: 'config', throttled: false },
  { response: '432 4.3.2 Concurrent connections limit exceeded.', command: 'AUTH XOAUTH2', kind: 'transient', throttled: true },
  { response: '432 4.3.2 STOREDRV.ClientSubmit; sender thread limit exceeded.', command: 'MAIL FROM', kind: 'transient', throttled: true },
  { response: '554 5.2.0 STOREDRV.Submission.Exception:SubmissionQuotaExceededException', command: 'DATA', kind: 'transient', throttled: true },
  { response: '552 5.3.4 Message size exceeds fixed maximum message size', command: 'DATA', kind: 'permanent', throttled: false },
  { response: '421 4.7.66 TLS 1.0 and 1.1 are not supported.', command: 'CONN', kind: 'config', throttled: false },
  {
    response: '550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup',
    command: 'RCPT TO',
    kind: 'permanent',
    throttled: false,
  },
];

/** Replies the doc only describes ("or for the Mailbox", the STARTTLS text with its reply code) and common variants. */
const VARIANT_REPLIES: readonly ReplyCase[] = [
  {
    response: '535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Mailbox.',
    command: 'AUTH XOAUTH2',
    kind: 'config',
    throttled: false,
  },
  { response: '451 5.7.3 STARTTLS is required to send mail [AM0PR01CA0001.eurprd01.prod.exchangelabs.com]', command: 'MAIL FROM', kind: 'config', throttled: false },
  { response: '530 5.7.3 STARTTLS is required to send mail', command: 'MAIL FROM', kind: 'config', throttled: false },
  { response: '535 5.7.3 Authentication unsuccessful [SN4PR0201CA0001.namprd02.prod.outlook.com]', command: 'AUTH LOGIN', kind: 'config', throttled: false },
  { response: '535 5.7.3 Authentication unsuccessful', kind: 'config', throttled: false },
  { response: '535 5.7.139 Authentication unsuccessful, the request did not meet the criteria to be authenticated successfully.', kind: 'config', throttled: false },
  { response: '421 4.3.2 Service not available, closing transmission channel', command: 'CONN', kind: 'transient', throttled: true },
  { response: '451 4.7.500 Server busy. Please try again later from [192.0.2.10].', command: 'MAIL FROM', kind: 'transient', throttled: true },
  { response: '451 4.4.0 Message failed to be made redundant due to A shadow copy was required but failed to be made', kind: 'transient', throttled: false },
  { response: '550 5.4.1 Recipient address rejected: Access denied.', command: 'RCPT TO', kind: 'permanent', throttled: false },
  { response: '550 5.7.708 Service unavailable. Access denied, traffic not accepted from this IP.', kind: 'permanent', throttled: false },
  { response: '503 5.5.1 Bad sequence of commands', command: 'DATA', kind: 'transient', throttled: false },
  { response: '334 VXNlcm5hbWU6', command: 'AUTH LOGIN', kind: 'transient', throttled: false },
];

interface NoReplyCase {
  name: string;
  failure: UpstreamFailure;
  kind: FailureKind;
}

/** Failures nodemailer reports without any reply from the upstream. */
const NO_REPLY_FAILURES: readonly NoReplyCase[] = [
  { name: 'a connection closed before the greeting', failure: { code: 'ECONNECTION', command: 'CONN', message: 'Connection closed unexpectedly' }, kind: 'transient' },
  { name: 'a timeout', failure: { code: 'ETIMEDOUT', command: 'CONN', message: 'Greeting never received' }, kind: 'transient' },
  {
    name: 'a refused connection',
    failure: { code: 'ESOCKET', originalCode: 'ECONNREFUSED', command: 'CONN', message: 'connect ECONNREFUSED 192.0.2.1:587' },
    kind: 'transient',
  },
  { name: 'a reset', failure: { code: 'ESOCKET', originalCode: 'ECONNRESET', message: 'read ECONNRESET' }, kind: 'transient' },
  {
    name: 'a failed DNS look-up',
    failure: { code: 'EDNS', originalCode: 'ENOTFOUND', command: 'CONN', message: 'getaddrinfo ENOTFOUND smtp.office365.com' },
    kind: 'transient',
  },
  { name: 'a proxy failure', failure: { code: 'EPROXY', message: 'Proxy connection failed' }, kind: 'transient' },
  { name: 'a stream error while sending', failure: { code: 'ESTREAMING', command: 'DATA', message: 'ENOENT: no such file' }, kind: 'transient' },
  { name: 'a garbled greeting', failure: { code: 'EPROTOCOL', response: 'garbage', command: 'CONN', message: 'Invalid greeting. response=garbage' }, kind: 'transient' },
  { name: 'nothing at all', failure: {}, kind: 'transient' },
  { name: 'a failed STARTTLS upgrade', failure: { code: 'ETLS', command: 'STARTTLS', message: 'Error initiating TLS - socket hang up' }, kind: 'config' },
  {
    name: 'an untrusted certificate',
    failure: { code: 'ESOCKET', originalCode: 'DEPTH_ZERO_SELF_SIGNED_CERT', command: 'CONN', message: 'self-signed certificate' },
    kind: 'config',
  },
  {
    name: 'an expired certificate',
    failure: { code: 'ESOCKET', originalCode: 'CERT_HAS_EXPIRED', command: 'CONN', message: 'certificate has expired' },
    kind: 'config',
  },
  {
    name: 'a certificate error known only by its text',
    failure: { code: 'ESOCKET', message: 'self-signed certificate in certificate chain' },
    kind: 'config',
  },
  {
    name: 'a certificate for another host',
    failure: { code: 'ESOCKET', originalCode: 'ERR_TLS_CERT_ALTNAME_INVALID', message: "Hostname/IP does not match certificate's altnames" },
    kind: 'config',
  },
  { name: 'EAUTH before any reply', failure: { code: 'EAUTH', command: 'API', message: 'Missing credentials for "LOGIN"' }, kind: 'config' },
  {
    name: 'a token request the identity platform refused',
    failure: { code: 'EAUTH', command: 'TOKEN', message: 'token request failed (invalid_client): AADSTS7000215: Invalid client secret provided.' },
    kind: 'config',
  },
  {
    name: 'a token refusal raised inside the XOAUTH2 exchange',
    failure: { code: 'EAUTH', command: 'AUTH XOAUTH2', message: 'token request failed (unauthorized_client): AADSTS700016: Application not found' },
    kind: 'config',
  },
  {
    name: 'an unreachable token authority',
    failure: { code: 'ECONNECTION', command: 'TOKEN', message: 'token request failed (network_error): Network request failed' },
    kind: 'transient',
  },
  {
    name: 'an unreachable token authority inside the XOAUTH2 exchange',
    failure: { code: 'EAUTH', command: 'AUTH XOAUTH2', message: 'token authority did not answer within 30000 ms' },
    kind: 'transient',
  },
  { name: 'an envelope nodemailer cannot send', failure: { code: 'EENVELOPE', command: 'API', message: 'No recipients defined' }, kind: 'permanent' },
];

/** The code nodemailer puts on an error at each stage, so the table sees what production sees. */
function nodemailerCodeFor(command: string | undefined): string | undefined {
  if (command === undefined) return undefined;
  if (command.startsWith('AUTH')) return 'EAUTH';
  if (command === 'MAIL FROM' || command === 'RCPT TO') return 'EENVELOPE';
  if (command === 'DATA') return 'EMESSAGE';
  return 'ECONNECTION';
}

describe('classifyReply', () => {
  describe('every reply quoted in exchange-online.md', () => {
    for (const c of DOCUMENTED_REPLIES) {
      it(`${c.response} → ${c.kind}${c.throttled ? ', throttled' : ''}`, () => {
        const result = classifyReply({ response: c.response, command: c.command, code: nodemailerCodeFor(c.command) });
        assert.equal(result.kind, c.kind);
        assert.equal(result.throttled, c.throttled);
      });
    }

    it('the table covers every failure reply the document quotes', () => {
      const doc = readFileSync(EXCHANGE_DOC, 'utf8');
      const quoted = [...doc.matchAll(/`([^`]+)`/g)]
        .map((m) => m[1] as string)
        .filter((text) => /^([45]\d\d )?[45]\.\d+\.\d+ /.test(text));
      const covered = new Set(DOCUMENTED_REPLIES.map((c) => c.response));
      assert.ok(quoted.length >= 18, `found only ${quoted.length} replies in the document`);
      assert.deepEqual(
        quoted.filter((text) => !covered.has(text)),
        [],
      );
    });
  });

  describe('reply variants and the generic classes', () => {
    for (const c of VARIANT_REPLIES) {
      it(`${c.response} → ${c.kind}${c.throttled ? ', throttled' : ''}`, () => {
        const result = classifyReply({ response: c.response, command: c.command });
        assert.equal(result.kind, c.kind);
        assert.equal(result.throttled, c.throttled);
      });
    }

    it('treats an unknown 5xx as permanent and an unknown 4xx as transient', () => {
      assert.equal(classifyReply({ responseCode: 550, response: '550 5.9.99 Something new' }).kind, 'permanent');
      assert.equal(classifyReply({ responseCode: 451, response: '451 4.9.99 Something new' }).kind, 'transient');
    });

    it('classifies by the reply code alone when the text is missing', () => {
      assert.equal(classifyReply({ responseCode: 554 }).kind, 'permanent');
      assert.equal(classifyReply({ responseCode: 421 }).kind, 'transient');
    });

    it('uses responseCode when the response text does not repeat it', () => {
      const result = classifyReply({ responseCode: 550, response: '5.7.60 SMTP; Client does not have permissions to send as this sender' });
      assert.equal(result.kind, 'config');
    });

    it('reads a multi-line reply as one', () => {
      const result = classifyReply({
        response: '550-5.7.60 SMTP; Client does not have\n550 5.7.60 permissions to send as this sender',
        responseCode: 550,
      });
      assert.equal(result.kind, 'config');
      assert.match(result.operatorAction ?? '', /Add-RecipientPermission/);
    });

    it('lets a reply decide over the error code it arrived with', () => {
      const closedWithReply = classifyReply({ code: 'ECONNECTION', command: 'CONN', response: '421 4.7.66 TLS 1.0 and 1.1 are not supported.', responseCode: 421 });
      assert.equal(closedWithReply.kind, 'config');
      const authWithReply = classifyReply({ code: 'EAUTH', command: 'AUTH XOAUTH2', response: '432 4.3.2 Concurrent connections limit exceeded.', responseCode: 432 });
      assert.deepEqual([authWithReply.kind, authWithReply.throttled], ['transient', true]);
    });
  });

  describe('failures without a reply', () => {
    for (const c of NO_REPLY_FAILURES) {
      it(`${c.name} → ${c.kind}`, () => {
        const result = classifyReply(c.failure);
        assert.equal(result.kind, c.kind);
        assert.equal(result.throttled, false);
      });
    }

    it('accepts a nodemailer error object as it is', () => {
      const error = Object.assign(new Error('Invalid login: 535 5.7.3 Authentication unsuccessful'), {
        code: 'EAUTH',
        response: '535 5.7.3 Authentication unsuccessful',
        responseCode: 535,
        command: 'AUTH XOAUTH2',
      });
      const result = classifyReply(error, { mailbox: 'relay@contoso.com' });
      assert.equal(result.kind, 'config');
      assert.match(result.operatorAction ?? '', /New-ServicePrincipal/);
    });
  });

  describe('operator actions', () => {
    const context = { sender: 'scanner@contoso.com', mailbox: 'relay@contoso.com' };

    it('names the SendAs grant for the sender and mailbox of the message', () => {
      for (const response of [
        '550 5.7.60 SMTP; Client does not have permissions to send as this sender',
        '554 5.2.0 STOREDRV.Submission.Exception:SendAsDeniedException.MapiExceptionSendAsDenied; Failed to process message due to a permanent exception',
      ]) {
        const result = classifyReply({ response, command: 'DATA' }, context);
        assert.ok(
          result.operatorAction?.startsWith('Add-RecipientPermission -Identity scanner@contoso.com -AccessRights SendAs -Trustee relay@contoso.com'),
          result.operatorAction,
        );
        assert.match(result.reason, /relay@contoso\.com is not allowed to send as scanner@contoso\.com/);
      }
    });

    it('takes the parties from a SendAsDenied reply when the caller does not know them', () => {
      const result = classifyReply({
        response: '554 5.2.252 SendAsDenied; relay@contoso.com not allowed to send as ceo@contoso.com; STOREDRV.Submission.Exception:SendAsDeniedException',
      });
      assert.match(result.operatorAction ?? '', /^Add-RecipientPermission -Identity ceo@contoso\.com -AccessRights SendAs -Trustee relay@contoso\.com /);
    });

    it('leaves visible placeholders when nothing names the parties', () => {
      const result = classifyReply({ response: '550 5.7.60 SMTP; Client does not have permissions to send as this sender' });
      assert.match(result.operatorAction ?? '', /-Identity <sender address> -AccessRights SendAs -Trustee <relay mailbox>/);
    });

    it('names Set-CASMailbox when SMTP AUTH is disabled for the mailbox or the tenant', () => {
      for (const scope of ['Mailbox', 'Tenant']) {
        const result = classifyReply(
          { response: `535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the ${scope}.`, command: 'AUTH XOAUTH2' },
          context,
        );
        assert.ok(result.operatorAction?.startsWith('Set-CASMailbox -Identity relay@contoso.com -SmtpClientAuthenticationDisabled $false'), result.operatorAction);
      }
    });

    it('gives the app consent, service principal and mailbox grant steps when the OAuth2 token is refused', () => {
      const result = classifyReply({ response: '535 5.7.3 Authentication unsuccessful', command: 'AUTH XOAUTH2' }, context);
      const action = result.operatorAction ?? '';
      assert.match(action, /SMTP\.SendAsApp/);
      assert.match(action, /New-ServicePrincipal -AppId .* -ObjectId <object id of the Enterprise Application/);
      assert.match(action, /Add-MailboxPermission -Identity relay@contoso\.com -User <service principal id> -AccessRights FullAccess/);
    });

    it('points at the user name and password when a basic login is refused', () => {
      const result = classifyReply({ response: '535 5.7.3 Authentication unsuccessful', command: 'AUTH LOGIN' }, context);
      assert.match(result.operatorAction ?? '', /upstream\.auth\.user \(relay@contoso\.com\) and upstream\.auth\.password/);
      assert.doesNotMatch(result.operatorAction ?? '', /Add-MailboxPermission/);
    });

    it('says to switch to OAuth2 when basic authentication is disabled or gone', () => {
      for (const response of [
        '550 5.7.30 Basic authentication is not supported for Client Submission.',
        '535 5.7.139 Authentication unsuccessful, basic authentication is disabled.',
        "535 5.7.139 Authentication unsuccessful, user is locked by your organization's security defaults policy.",
      ]) {
        assert.match(classifyReply({ response, command: 'AUTH LOGIN' }).operatorAction ?? '', /set upstream\.auth\.type to oauth2/, response);
      }
    });

    it('points at upstream.security and the port for authentication order, STARTTLS and TLS problems', () => {
      const failures: UpstreamFailure[] = [
        { response: '530 5.7.57 Client not authenticated to send mail' },
        { response: '530 5.7.0 Must issue a STARTTLS command first' },
        { response: '451 5.7.3 STARTTLS is required to send mail' },
        { response: '421 4.7.66 TLS 1.0 and 1.1 are not supported.' },
        { code: 'ETLS', message: 'Error initiating TLS - socket hang up' },
      ];
      for (const failure of failures) {
        const action = classifyReply(failure).operatorAction ?? '';
        assert.match(action, /upstream\.security to starttls with upstream\.port 587/, JSON.stringify(failure));
      }
    });

    it('gives every config result an action and no other result one', () => {
      const all: UpstreamFailure[] = [
        ...DOCUMENTED_REPLIES.map((c) => ({ response: c.response, command: c.command })),
        ...VARIANT_REPLIES.map((c) => ({ response: c.response, command: c.command })),
        ...NO_REPLY_FAILURES.map((c) => c.failure),
      ];
      for (const failure of all) {
        const result = classifyReply(failure, context);
        assert.equal(result.operatorAction !== undefined, result.kind === 'config', JSON.stringify(failure));
      }
    });
  });

  describe('reasons', () => {
    it('are one line that quotes the reply as received', () => {
      const result = classifyReply({ response: '550-5.1.10 RESOLVER.ADR.RecipientNotFound;\r\n550 5.1.10 Recipient not found by SMTP address lookup' });
      assert.doesNotMatch(result.reason, /[\r\n]/);
      assert.match(result.reason, /^the recipient does not exist \(upstream: 550-5\.1\.10 RESOLVER/);
    });

    it('name the error code when there was no reply', () => {
      const result = classifyReply({ code: 'ESOCKET', originalCode: 'ECONNREFUSED', message: 'connect ECONNREFUSED 192.0.2.1:587' });
      assert.equal(result.reason, 'the connection to the upstream failed or was closed (ESOCKET ECONNREFUSED: connect ECONNREFUSED 192.0.2.1:587)');
    });

    it('cut a very long reply short', () => {
      const result = classifyReply({ response: `550 5.7.1 ${'x'.repeat(5000)}` });
      assert.ok(result.reason.length < 300, `${result.reason.length} characters`);
    });
  });
});

describe('classifyReply: STARTTLS, TLS versions and continuous-error throttling', () => {
  const STARTTLS_CASES: readonly UpstreamFailure[] = [
    // nodemailer's requireTLS: STARTTLS sent although EHLO did not offer it (a firewall stripped it).
    { code: 'ETLS', response: '502 5.5.2 Error: command not recognized', responseCode: 502, command: 'STARTTLS', message: 'Error upgrading connection with STARTTLS' },
    { code: 'ETLS', response: '554 5.7.0 TLS not available due to local problem', responseCode: 554, command: 'STARTTLS', message: 'Error upgrading connection with STARTTLS' },
  ];
  for (const failure of STARTTLS_CASES) {
    it(`${failure.response ?? ''} to STARTTLS needs the operator, with the firewall hint`, () => {
      const c = classifyReply(failure);
      assert.equal(c.kind, 'config');
      assert.match(c.operatorAction ?? '', /firewall's SMTP inspection/);
    });
  }

  it('a TLS protocol-version alert keeps its cause through originalCode and needs the operator', () => {
    const c = classifyReply({ code: 'ESOCKET', originalCode: 'ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION', command: 'CONN', message: 'tlsv1 alert protocol version' });
    assert.equal(c.kind, 'config');
    assert.match(c.reason, /no TLS version both sides accept/);
    assert.match(c.operatorAction ?? '', /TLS 1\.2 or newer/);
  });

  it('without originalCode the same alert is only a socket error (why the submitter keeps it)', () => {
    assert.equal(classifyReply({ code: 'ESOCKET', command: 'CONN', message: 'tlsv1 alert protocol version' }).kind, 'transient');
  });

  it('a certificate failure kept in originalCode needs the operator', () => {
    const c = classifyReply({ code: 'ESOCKET', originalCode: 'CERT_HAS_EXPIRED', command: 'CONN', message: 'certificate has expired' });
    assert.equal(c.kind, 'config');
    assert.match(c.operatorAction ?? '', /upstream\.ca/);
  });

  const THROTTLES = [
    '550 5.2.251 Sender throttled due to continuous mailbox full errors',
    '550 5.2.252 Sender throttled due to continuous send as denied errors',
    '550 5.2.253 Sender throttled due to continuous invalid license errors',
    '550 5.2.254 Sender throttled due to continuous too many recipients errors',
    '550 5.2.255 Sender throttled due to continuous invalid recipients errors',
  ];
  for (const response of THROTTLES) {
    it(`${response.slice(0, 10)} blocks the mailbox and needs the operator`, () => {
      const c = classifyReply({ response, command: 'MAIL FROM' }, { mailbox: 'relay@contoso.com' });
      assert.deepEqual([c.kind, c.throttled, c.mailboxBlocked], ['config', true, true]);
      assert.match(c.reason, /relay@contoso\.com/);
      assert.match(c.operatorAction ?? '', /support cannot lift it/);
    });
  }

  it('554 5.2.252 SendAsDenied stays a send-as denial, not a mailbox block', () => {
    const c = classifyReply({ response: '554 5.2.252 SendAsDenied; relay@contoso.com not allowed to send as ceo@contoso.com; STOREDRV', command: 'DATA' });
    assert.equal(c.mailboxBlocked, undefined);
    assert.match(c.operatorAction ?? '', /Add-RecipientPermission -Identity ceo@contoso\.com/);
  });
});
