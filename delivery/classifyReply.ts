import { GRAPH_RULES } from './graph/graphReplyRules.ts';

export type FailureKind = 'transient' | 'permanent' | 'config';

/** A failed submission as nodemailer reports it; a nodemailer error object can be passed as is. */
export interface UpstreamFailure {
  responseCode?: number;
  response?: string;
  /** nodemailer error code: ECONNECTION, ETIMEDOUT, ESOCKET, EDNS, ETLS, EAUTH, EENVELOPE, EMESSAGE, EPROTOCOL, ESTREAMING... */
  code?: string;
  /** e.g. 'AUTH XOAUTH2', 'MAIL FROM', 'RCPT TO', 'DATA' */
  command?: string;
  /**
   * The client's error text. Read only when the upstream sent no reply: then it is all that tells
   * a certificate failure or a refused token request from a dropped connection.
   */
  message?: string;
  /** The system code nodemailer keeps when it puts its own in `code` (ECONNREFUSED, CERT_HAS_EXPIRED...). */
  originalCode?: string;
}

export interface Classification {
  kind: FailureKind;
  throttled: boolean;
  /** one line an operator can act on */
  reason: string;
  /** what to change, e.g. the PowerShell command; only for config */
  operatorAction?: string;
  /**
   * Exchange Online throttles the whole mailbox (every sender on it) after continuous errors of
   * one kind: the delivery loop should stop all attempts on the mailbox for `MAILBOX_BLOCK_MS`,
   * not only hold this message, or each new attempt extends the block.
   */
  mailboxBlocked?: true;
  /**
   * The request reached the upstream and no answer came back (Graph: a timeout or 5xx after the
   * request was sent; Graph has no idempotency key): the message may have been sent.
   */
  maybeSent?: true;
}

/**
 * How long to leave a mailbox alone after `5.2.251`-`5.2.255`. Microsoft publishes no window
 * and support cannot lift it; an hour keeps the relay from feeding the throttle while the
 * operator fixes the cause.
 */
export const MAILBOX_BLOCK_MS = 60 * 60_000;

export interface ClassifyContext {
  /** The address the message is sent as (From after any send-as rewrite). */
  sender?: string;
  /** The mailbox the relay authenticates as. */
  mailbox?: string;
}

/** What the rules look at, worked out once per failure. */
export interface Facts {
  /** '' when the upstream sent no reply; else one line, basic code first: '550 5.7.60 SMTP; ...'. */
  reply: string;
  /** nodemailer's code and the system code it replaced, space separated: 'ESOCKET CERT_HAS_EXPIRED'. */
  errorCodes: string;
  command: string;
  /** Error text and any unnumbered response; only filled when there is no reply. */
  detail: string;
  sender: string;
  mailbox: string;
}

/**
 * First match wins. A rule with `reply` applies only when the upstream answered with a code;
 * one with `errorCode` or `detail` only when it did not (a network, TLS or local failure).
 */
export interface Rule {
  reply?: RegExp;
  command?: RegExp;
  errorCode?: RegExp;
  detail?: RegExp;
  /** Matches any failure without a reply; for the catch-all. */
  noReply?: true;
  kind: FailureKind;
  throttled?: true;
  mailboxBlocked?: true;
  maybeSent?: true;
  reason: string | ((facts: Facts) => string);
  action?: (facts: Facts) => string;
}

const PORT_AND_SECURITY = 'set upstream.security to starttls with upstream.port 587 (Exchange Online offers AUTH only after STARTTLS)';
const SWITCH_TO_OAUTH2 =
  'set upstream.auth.type to oauth2 (app-only XOAUTH2: an app registration with the SMTP.SendAsApp application permission, admin consent, and its service principal registered with New-ServicePrincipal)';

const STARTTLS_STRIPPED =
  "a firewall's SMTP inspection (Cisco ESMTP inspection, SonicWall, FortiGate and the like) usually strips or refuses STARTTLS: " +
  'switch SMTP inspection off for the relay\'s traffic to the upstream on port 587, or connect from a network without it; ' +
  '`smarthost doctor` shows what the upstream offers';

const TLS_VERSION_STEPS =
  'the relay needs TLS 1.2 or newer and the upstream (or a TLS-inspecting proxy or firewall in between) offered an older version: ' +
  'update or bypass the proxy, or point upstream.host at the real server';

function tlsSteps(): string {
  return `check that upstream.host matches the name in its certificate, trust a TLS-inspecting proxy's CA with upstream.ca, and ${PORT_AND_SECURITY}`;
}

function oauthGrantSteps(f: Facts): string {
  return (
    "check that the app registration has the Office 365 Exchange Online application permission SMTP.SendAsApp with admin consent; " +
    'register the app in Exchange Online: New-ServicePrincipal -AppId <application (client) id> -ObjectId <object id of the Enterprise Application, not of the App Registration>; ' +
    `let it use the mailbox: Add-MailboxPermission -Identity ${f.mailbox} -User <service principal id> -AccessRights FullAccess`
  );
}

function basicCredentialSteps(f: Facts): string {
  return `check upstream.auth.user (${f.mailbox}) and upstream.auth.password; an account that needs MFA cannot use basic authentication: ${SWITCH_TO_OAUTH2}`;
}

/**
 * The Exchange Online replies of ../shared/docs/exchange-online.md first, each where its fix is
 * known, then the generic SMTP classes. Specific texts sit above the codes they share (5.7.3 is
 * both "STARTTLS is required" and a failed login; 554 5.2.0 is both send-as and the daily quota).
 */
const RULES: readonly Rule[] = [
  // Microsoft Graph's answers (command GRAPH ...), whose fixes differ from SMTP AUTH's.
  ...GRAPH_RULES,
  // Replies
  {
    // nodemailer with requireTLS sends STARTTLS even when EHLO did not offer it; the answer is a
    // 5xx either way. Exchange Online always offers it, so something between rewrote the session.
    reply: /^5/,
    command: /^STARTTLS$/i,
    kind: 'config',
    reason: 'the upstream did not accept STARTTLS (missing from its EHLO, or refused)',
    action: () => STARTTLS_STRIPPED,
  },
  {
    // '550 5.2.252 Sender throttled due to continuous send as denied errors': above the send-as
    // rules, whose texts it shares, because it blocks every message of the mailbox, not one.
    // '554 5.2.252 SendAsDenied; ...' shares the code but not 'throttled': that one is send-as.
    reply: /^5\d\d 5\.2\.25[1-5]\b.*\bthrottled\b|Sender throttled due to continuous/i,
    kind: 'config',
    throttled: true,
    mailboxBlocked: true,
    reason: (f) => `Exchange Online blocked ${f.mailbox} for SMTP AUTH after continuous errors of one kind; every message on it waits`,
    action: (f) =>
      `fix the error that repeated (the reply names it: a SendAs grant, the mailbox's license, invalid recipients, a full mailbox) for ${f.mailbox}; ` +
      'the block lifts on its own and support cannot lift it; until then the relay sends nothing on this mailbox',
  },
  {
    // High Volume Email accounts send to the tenant's own recipients only.
    reply: /^550 5\.5\.105\b/,
    kind: 'permanent',
    reason: 'High Volume Email sends to internal recipients only; this recipient is outside the tenant',
  },
  {
    // HVE refuses a token close to expiry; the provider renews 10 minutes ahead, so a retry gets a fresh one.
    reply: /^501 5\.5\.127\b/,
    kind: 'transient',
    reason: 'High Volume Email refused a token close to expiry; the next attempt uses a renewed token',
  },
  {
    reply: /SubmissionQuotaExceeded/i,
    kind: 'transient',
    throttled: true,
    reason: 'the mailbox has used up its daily submission quota; Exchange Online takes mail again as the 24-hour window moves on',
  },
  {
    reply: /^5\d\d 5\.7\.60\b|SendAsDenied/i,
    kind: 'config',
    reason: (f) => `${f.mailbox} is not allowed to send as ${f.sender}`,
    action: (f) =>
      `Add-RecipientPermission -Identity ${f.sender} -AccessRights SendAs -Trustee ${f.mailbox} ` +
      `(with upstream.auth.type oauth2 the Trustee may be the app's service principal instead), or set the device's sendAs to an address ${f.mailbox} may send as`,
  },
  {
    reply: /^5\d\d 5\.7\.139\b.*SmtpClientAuthentication is disabled for the Tenant/i,
    kind: 'config',
    reason: 'SMTP AUTH is disabled for the tenant',
    action: (f) =>
      `Set-CASMailbox -Identity ${f.mailbox} -SmtpClientAuthenticationDisabled $false (enables it for the relay mailbox only; ` +
      'Set-TransportConfig -SmtpClientAuthenticationDisabled $false would enable it for the whole tenant)',
  },
  {
    reply: /^5\d\d 5\.7\.139\b.*SmtpClientAuthentication is disabled/i,
    kind: 'config',
    reason: (f) => `SMTP AUTH is disabled for the mailbox ${f.mailbox}`,
    action: (f) => `Set-CASMailbox -Identity ${f.mailbox} -SmtpClientAuthenticationDisabled $false`,
  },
  {
    reply: /^5\d\d 5\.7\.139\b.*security defaults/i,
    kind: 'config',
    reason: "the tenant's security defaults block basic authentication for SMTP AUTH",
    action: () => SWITCH_TO_OAUTH2,
  },
  {
    reply: /^5\d\d 5\.7\.139\b.*basic authentication is disabled/i,
    kind: 'config',
    reason: 'basic authentication for SMTP AUTH is disabled in this tenant',
    action: () => SWITCH_TO_OAUTH2,
  },
  {
    reply: /^5\d\d 5\.7\.139\b/,
    kind: 'config',
    reason: (f) => `Exchange Online refused SMTP AUTH for ${f.mailbox} by policy`,
    action: (f) =>
      `Set-CASMailbox -Identity ${f.mailbox} -SmtpClientAuthenticationDisabled $false, and check that no Conditional Access policy or security default blocks the sign-in`,
  },
  {
    reply: /^5\d\d 5\.7\.30\b/,
    kind: 'config',
    reason: 'Exchange Online no longer accepts basic authentication for client submission',
    action: () => SWITCH_TO_OAUTH2,
  },
  {
    reply: /^4\d\d 4\.7\.66\b/,
    kind: 'config',
    reason: 'Exchange Online refused a TLS 1.0/1.1 connection; it needs TLS 1.2 or newer',
    action: () =>
      'the relay connects with TLS 1.2 or newer, so look for a TLS-inspecting proxy or firewall between it and Exchange Online that downgrades the connection, and ' +
      PORT_AND_SECURITY,
  },
  {
    // Reported with a 5xx and with a 4xx basic code ('451 5.7.3 STARTTLS is required to send
    // mail'); waiting cures neither. Other servers: '530 5.7.0 Must issue a STARTTLS command first'.
    reply: /^[45]\d\d .*\bSTARTTLS\b.*\brequired\b|^[45]\d\d .*\bMust issue a STARTTLS\b/i,
    kind: 'config',
    reason: 'the upstream requires STARTTLS before mail',
    action: () => PORT_AND_SECURITY,
  },
  {
    reply: /^5\d\d 5\.7\.57\b/,
    kind: 'config',
    reason: 'the upstream refused mail because the relay had not authenticated',
    action: (f) => `configure upstream.auth (oauth2, or basic) for ${f.mailbox} and ${PORT_AND_SECURITY}`,
  },
  {
    reply: /^535\b/,
    command: /XOAUTH2/i,
    kind: 'config',
    reason: (f) => `Exchange Online refused the OAuth2 token for ${f.mailbox}`,
    action: oauthGrantSteps,
  },
  {
    reply: /^535\b/,
    command: /^AUTH\b/i,
    kind: 'config',
    reason: (f) => `Exchange Online refused the user name or password of ${f.mailbox}`,
    action: basicCredentialSteps,
  },
  {
    reply: /^535\b/,
    kind: 'config',
    reason: (f) => `Exchange Online refused the credentials of ${f.mailbox}`,
    action: (f) => `with upstream.auth.type oauth2: ${oauthGrantSteps(f)}. With basic: ${basicCredentialSteps(f)}`,
  },
  {
    reply: /^5\d\d 5\.7\.64\b|TenantAttribution/i,
    kind: 'config',
    reason: 'the connector endpoint did not attribute this connection to your tenant',
    action: () =>
      "add this host's public IP address or its TLS certificate name to an inbound connector from your organization's email server, " +
      'or submit to smtp.office365.com port 587 with upstream.auth',
  },
  {
    reply: /^4\d\d 4\.3\.2\b.*Concurrent connections/i,
    kind: 'transient',
    throttled: true,
    reason: 'more than the 3 concurrent connections per mailbox that Exchange Online allows',
  },
  {
    reply: /^4\d\d 4\.3\.2\b.*sender thread limit/i,
    kind: 'transient',
    throttled: true,
    reason: 'the mailbox is sending faster than the 30 messages a minute Exchange Online allows',
  },
  {
    reply: /^4\d\d 4\.3\.2\b|^4\d\d .*(throttl|rate limit|limit exceeded|server busy)/i,
    kind: 'transient',
    throttled: true,
    reason: 'the upstream is throttling this sender',
  },
  {
    reply: /^5\d\d 5\.3\.4\b/,
    kind: 'permanent',
    reason: 'the message is larger than the upstream accepts',
  },
  {
    reply: /^5\d\d 5\.1\.10\b/,
    kind: 'permanent',
    reason: 'the recipient does not exist',
  },
  {
    // RFC 5321 makes 503 permanent, but it blames the session's state, not the message: a fresh
    // connection sends the same message fine.
    reply: /^503\b/,
    kind: 'transient',
    reason: 'the upstream rejected the command order; the next attempt uses a new connection',
  },
  { reply: /^5/, kind: 'permanent', reason: 'the upstream refused the message' },
  { reply: /^4/, kind: 'transient', reason: 'the upstream deferred the message' },
  { reply: /^\d/, kind: 'transient', reason: 'the upstream answered with an unexpected reply' },

  // No reply: the connection, TLS, or this side failed before the upstream could answer.
  {
    errorCode: /\b(ERR_SSL_\w*(PROTOCOL_VERSION|UNSUPPORTED_PROTOCOL|WRONG_VERSION_NUMBER)\w*|ERR_TLS_INVALID_PROTOCOL_VERSION)\b/,
    kind: 'config',
    reason: 'the TLS connection to the upstream failed: no TLS version both sides accept',
    action: () => TLS_VERSION_STEPS,
  },
  {
    errorCode: /\b(ETLS|EREQUIRETLS|CERT_\w+|\w*SELF_SIGNED\w*|UNABLE_TO_\w+|ERR_TLS_\w+|ERR_SSL_\w+)\b/,
    kind: 'config',
    reason: 'the TLS connection to the upstream failed',
    action: tlsSteps,
  },
  {
    // The token provider's own refusals (tokenProvider.ts): the identity platform said no.
    detail: /\b(invalid_client|unauthorized_client|invalid_request|invalid_scope|invalid_grant|invalid_resource)\b|AADSTS\d+/,
    kind: 'config',
    reason: 'the identity platform refused the token request',
    action: () => 'check upstream.auth.tenantId, upstream.auth.clientId and upstream.auth.clientSecret or upstream.auth.certificate (an expired secret is the usual cause)',
  },
  {
    // After the refusals above: an AADSTS text about a bad certificate credential is not a TLS failure.
    detail: /certificate|self[- ]signed|\bCERT\b|wrong version number|handshake failure|unsupported protocol/i,
    kind: 'config',
    reason: 'the TLS connection to the upstream failed',
    action: tlsSteps,
  },
  {
    // Reaching the token authority failed; that passes like any network trouble.
    detail: /token request failed|token authority/i,
    kind: 'transient',
    reason: 'no access token could be had from the identity platform',
  },
  {
    errorCode: /\b(EAUTH|ENOAUTH)\b/,
    kind: 'config',
    reason: 'authentication with the upstream could not run',
    action: (f) => `check upstream.auth (type, user ${f.mailbox} and its credentials) and ${PORT_AND_SECURITY}`,
  },
  {
    errorCode: /\bECONFIG\b/,
    kind: 'config',
    reason: 'the SMTP client rejected its configuration',
    action: () => 'check the upstream settings (host, port, security, auth)',
  },
  {
    // nodemailer refuses an envelope before sending it (no recipients, an address it cannot send);
    // the same message would fail the same way.
    errorCode: /\bEENVELOPE\b/,
    kind: 'permanent',
    reason: 'the message envelope cannot be sent (no valid sender or recipient)',
  },
  {
    errorCode: /\bEDNS\b/,
    kind: 'transient',
    reason: 'the upstream host name did not resolve; if this persists, check upstream.host',
  },
  {
    errorCode: /\b(ECONNECTION|ETIMEDOUT|ESOCKET|EPROXY|ECONNREFUSED|ECONNRESET|EPIPE|EHOSTUNREACH|ENETUNREACH)\b/,
    kind: 'transient',
    reason: 'the connection to the upstream failed or was closed',
  },
  { noReply: true, kind: 'transient', reason: 'the submission failed before the upstream replied' },
];

/**
 * Decides what a failed submission means for the message: try again later (`transient`), give up
 * (`permanent`), or wait for an operator to fix something (`config`, with `operatorAction` saying what).
 */
export function classifyReply(failure: UpstreamFailure, context: ClassifyContext = {}): Classification {
  const reply = replyLine(failure);
  const parties = sendAsParties(reply);
  const facts: Facts = {
    reply,
    errorCodes: [failure.code, failure.originalCode].filter(Boolean).join(' '),
    command: failure.command ?? '',
    detail: reply ? '' : [failure.message, failure.response].filter(Boolean).join(' '),
    sender: context.sender || parties.sender || '<sender address>',
    mailbox: context.mailbox || parties.mailbox || '<relay mailbox>',
  };
  const rule = RULES.find((candidate) => matches(candidate, facts));
  // The last rule matches every failure without a reply and the reply catch-alls every one with.
  if (!rule) {
    throw new Error('classifyReply: no rule matched; the catch-all rules are missing');
  }
  const reason = typeof rule.reason === 'string' ? rule.reason : rule.reason(facts);
  const classification: Classification = {
    kind: rule.kind,
    throttled: rule.throttled === true,
    reason: oneLine(`${reason} (${evidence(facts, failure)})`),
  };
  if (rule.mailboxBlocked) classification.mailboxBlocked = true;
  if (rule.maybeSent) classification.maybeSent = true;
  if (rule.kind === 'config' && rule.action) {
    classification.operatorAction = oneLine(rule.action(facts));
  }
  return classification;
}

function matches(rule: Rule, f: Facts): boolean {
  if (rule.command && !rule.command.test(f.command)) {
    return false;
  }
  if (rule.reply) {
    return f.reply !== '' && rule.reply.test(f.reply);
  }
  if (f.reply !== '') {
    return false;
  }
  if (rule.errorCode) {
    return rule.errorCode.test(f.errorCodes);
  }
  if (rule.detail) {
    return rule.detail.test(f.detail);
  }
  return rule.noReply === true;
}

/**
 * The reply as one line starting with its basic code, or '' without one. Multi-line replies
 * repeat the code on every line ('550-...\n550 ...'); only the first copy is kept so that rules
 * can anchor on '^550 5.7.60'. A reply quoted without its basic code ('5.7.3 STARTTLS is
 * required...', as logs and documentation often shorten it) gets the generic code of its class.
 */
function replyLine(failure: UpstreamFailure): string {
  const lines = (failure.response ?? '')
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter((line) => line !== '');
  const first = lines[0] ?? '';
  const basic = /^(\d{3})(?:[ -]|$)/.exec(first);
  const enhancedOnly = /^([245])\.\d{1,3}\.\d{1,3}\b/.exec(first);
  const code = failure.responseCode ?? (basic ? Number(basic[1]) : enhancedOnly ? Number(enhancedOnly[1]) * 100 + 50 : undefined);
  if (code === undefined || !Number.isInteger(code) || code < 100 || code > 599) {
    return '';
  }
  const text = lines.map((line) => line.replace(/^\d{3}(?:[ -]|$)/, '')).join(' ');
  return `${code} ${text}`.trim();
}

/** '554 5.2.252 SendAsDenied; relay@x not allowed to send as y@x; ...' names both parties. */
function sendAsParties(reply: string): { mailbox?: string; sender?: string } {
  const named = /(\S+@[^\s;]+) not allowed to send as (\S+@[^\s;]+)/i.exec(reply);
  return named ? { mailbox: named[1], sender: named[2] } : {};
}

function evidence(f: Facts, failure: UpstreamFailure): string {
  if (f.reply) {
    // The reply as received (not as normalized), so an operator can search for it.
    const received = failure.response?.trim() || String(failure.responseCode);
    return `upstream: ${received.length > 200 ? `${received.slice(0, 200)}…` : received}`;
  }
  const codes = f.errorCodes || 'no error code';
  return failure.message ? `${codes}: ${failure.message.slice(0, 200)}` : codes;
}

function oneLine(text: string): string {
  return text.replace(/[\x00-\x1f\x7f]+/g, ' ').trim();
}
