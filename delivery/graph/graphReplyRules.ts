import type { Facts, Rule } from '../classifyReply.ts';
import type { UpstreamFailureReport } from '../smtp/submission.ts';

/**
 * Microsoft Graph's answers written as SMTP-like replies (so the history, the console and the
 * shared classifyReply treat both routes alike), and the rules that give each its class and fix.
 * Every Graph failure carries `command: GRAPH ...`; these rules run before the SMTP ones, whose
 * fixes (Set-CASMailbox, SMTP.SendAsApp) would be wrong here.
 */

export const GRAPH_COMMAND = 'GRAPH sendMail';
export const GRAPH_LOOKUP_COMMAND = 'GRAPH Sent Items lookup';

/** No answer after the request left: it may have been sent. */
export const MAYBE_SENT_CODE = 'EGRAPH_MAYBE_SENT';
/** The mailbox's Retry-After pause or Graph budget would hold this send too long: nothing was sent. */
export const MAILBOX_BUSY_CODE = 'EGRAPH_BUSY';
/** Sent Items could not be searched before a resend: nothing was sent. */
export const LOOKUP_FAILED_CODE = 'EGRAPH_LOOKUP';

type GraphAnswer = { status: number; code: string | undefined; message: string | undefined };

function graphPart(answer: GraphAnswer): string {
  const detail = answer.message ? `: ${answer.message.replace(/[\r\n]+/g, ' ').slice(0, 160)}` : '';
  return `Graph HTTP ${answer.status} ${answer.code ?? 'no error code'}${detail}`;
}

function reply(code: number, enhanced: string, text: string, command = GRAPH_COMMAND): UpstreamFailureReport {
  return { responseCode: code, response: `${code} ${enhanced} ${text}`, command, message: text };
}

export const graphReplies = {
  tokenRefused: (answer: GraphAnswer) => reply(535, '5.7.3', `${graphPart(answer)} (the token was refused)`),
  /** 403 and the token carries no Mail.Send role (RBAC for Applications grants it in Exchange, not in the token). */
  noMailSend: (answer: GraphAnswer, appId: string, mailbox: string) =>
    reply(535, '5.7.3', `${graphPart(answer)} (app ${appId} has no Mail.Send permission for ${mailbox})`),
  /** 403 although the token carries Mail.Send: an application access policy leaves the mailbox out. */
  accessPolicy: (answer: GraphAnswer, appId: string, mailbox: string) =>
    reply(535, '5.7.3', `${graphPart(answer)} (app ${appId} holds Mail.Send but may not use ${mailbox})`),
  mailboxNotFound: (answer: GraphAnswer, mailbox: string) => reply(550, '5.1.8', `${graphPart(answer)} (no Exchange Online mailbox ${mailbox})`),
  sendAsDenied: (answer: GraphAnswer, mailbox: string, sender: string) =>
    reply(550, '5.7.60', `${graphPart(answer)} (${mailbox} not allowed to send as ${sender})`),
  tooLarge: (detail: string) => reply(552, '5.3.4', `Graph: ${detail}`),
  throttled: (answer: GraphAnswer, mailbox: string, waitMs: number) =>
    reply(451, '4.7.500', `${graphPart(answer)} (throttled ${mailbox}, Retry-After ${Math.ceil(waitMs / 1000)}s)`),
  refused: (answer: GraphAnswer) => reply(answer.status >= 500 ? 554 : 550, '5.6.0', graphPart(answer)),
  maybeSent: (what: string): UpstreamFailureReport => ({ code: MAYBE_SENT_CODE, command: GRAPH_COMMAND, message: `${what}; the message may have been sent` }),
  busy: (message: string): UpstreamFailureReport => ({ code: MAILBOX_BUSY_CODE, command: GRAPH_COMMAND, message }),
  lookupFailed: (what: string): UpstreamFailureReport => ({ code: LOOKUP_FAILED_CODE, command: GRAPH_LOOKUP_COMMAND, message: `${what}; not resent` }),
};

const GRAPH = /^GRAPH\b/;

function appOf(f: Facts): string {
  return /\bapp (\S+)/.exec(f.reply)?.[1] ?? '<application (client) id>';
}

/** RBAC for Applications limited to the one mailbox, values filled in. */
function rbacSteps(appId: string, mailbox: string): string {
  const scope = `smarthost ${mailbox}`;
  return (
    `New-ServicePrincipal -AppId ${appId} -ObjectId <object id of the Enterprise Application> (once), ` +
    `New-ManagementScope -Name "${scope}" -RecipientRestrictionFilter "PrimarySmtpAddress -eq '${mailbox}'", ` +
    `New-ManagementRoleAssignment -App ${appId} -Role "Application Mail.Send" -CustomResourceScope "${scope}"`
  );
}

export const GRAPH_RULES: readonly Rule[] = [
  {
    command: GRAPH,
    reply: /^535 .*Graph HTTP 401\b/,
    kind: 'config',
    reason: (f) => `Microsoft Graph refused the token sent for ${f.mailbox}`,
    action: () =>
      "the token must be for Microsoft Graph: set upstream.preset (it sets upstream.auth.scope to the cloud's Graph scope) or upstream.auth.scope: https://graph.microsoft.com/.default, " +
      'and check upstream.auth.tenantId, upstream.auth.clientId and the secret or certificate',
  },
  {
    command: GRAPH,
    reply: /^535 .*has no Mail\.Send permission/,
    kind: 'config',
    reason: (f) => `the app may not send as ${f.mailbox} through Microsoft Graph: no Mail.Send in its token and no RBAC for Applications assignment covering the mailbox`,
    action: (f) =>
      `RBAC for Applications for this mailbox only: ${rbacSteps(appOf(f), f.mailbox)}; or give the app registration the Microsoft Graph application permission Mail.Send with admin consent ` +
      '(every mailbox of the tenant; do not do both, they add up)',
  },
  {
    command: GRAPH,
    reply: /^535 .*holds Mail\.Send but may not use/,
    kind: 'config',
    reason: (f) => `an application access policy keeps the app from ${f.mailbox}`,
    action: (f) =>
      `Test-ApplicationAccessPolicy -Identity ${f.mailbox} -AppId ${appOf(f)} shows the policy; add ${f.mailbox} to the policy's group, ` +
      `or move to RBAC for Applications: ${rbacSteps(appOf(f), f.mailbox)}`,
  },
  {
    command: GRAPH,
    reply: /^550 5\.1\.8 Graph\b/,
    kind: 'config',
    reason: (f) => `Microsoft Graph found no Exchange Online mailbox ${f.mailbox}`,
    action: (f) =>
      `check upstream.auth.user (${f.mailbox}): it must be an Exchange Online mailbox with a license (Get-EXOMailbox -Identity ${f.mailbox}); ` +
      'MailboxNotEnabledForRESTAPI means it is on-premises, inactive, soft-deleted or unlicensed',
  },
  {
    command: GRAPH,
    reply: /^550 5\.7\.60 Graph\b/,
    kind: 'config',
    reason: (f) => `${f.mailbox} is not allowed to send as ${f.sender}`,
    action: (f) => `Add-RecipientPermission -Identity ${f.sender} -AccessRights SendAs -Trustee ${f.mailbox}, or set the device's sendAs to an address ${f.mailbox} may send as`,
  },
  {
    command: GRAPH,
    reply: /^552 5\.3\.4 Graph\b/,
    kind: 'permanent',
    reason:
      'the message is larger than one Graph sendMail request takes (about 3 MB of MIME); set upstream.graph.largeMessages: smtp to send such messages over SMTP AUTH as the same mailbox',
  },
  {
    command: GRAPH,
    reply: /^4\d\d .*Graph HTTP (429|503)\b/,
    kind: 'transient',
    throttled: true,
    reason: (f) => `Microsoft Graph throttled ${f.mailbox}; every later send to it waits for the Retry-After`,
  },
  {
    command: GRAPH,
    errorCode: /\bEGRAPH_MAYBE_SENT\b/,
    kind: 'transient',
    maybeSent: true,
    reason:
      'may have been sent: Microsoft Graph did not answer after the request left (timeout or HTTP 5xx) and has no idempotency key; ' +
      'with saveToSentItems the retry first looks for the message in Sent Items',
  },
  {
    command: GRAPH,
    errorCode: /\bEGRAPH_BUSY\b/,
    kind: 'transient',
    throttled: true,
    reason: 'held back by the Graph limits of the mailbox (a Retry-After pause or a used-up budget): nothing was sent',
  },
  {
    command: GRAPH,
    errorCode: /\bEGRAPH_LOOKUP\b/,
    kind: 'transient',
    reason: "Sent Items could not be searched for an earlier attempt's copy: not resent, so no duplicate",
  },
];
