import { randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import { classifyReply } from '../../../delivery/classifyReply.ts';
import { CLOUD_PRESETS } from '../../../delivery/cloudPresets.ts';
import { graphMailboxLimiter } from '../../../delivery/graph/graphLimits.ts';
import { graphReplies } from '../../../delivery/graph/graphReplyRules.ts';
import { GraphSubmitter, MAIL_SEND_ROLE } from '../../../delivery/graph/graphSubmitter.ts';
import { lookUpSentItem, sentItemsForbidden } from '../../../delivery/graph/sentItemsLookup.ts';
import { SubmitError } from '../../../delivery/smtp/submission.ts';
import type { OAuth2AuthConfig, UpstreamConfig } from '../../../delivery/upstreamConfig.ts';
import type { DoctorReport } from '../report.ts';
import { testMessage } from './senders.ts';
import type { TokenResult } from './token.ts';

/** Microsoft Graph's first-party app id, which some tokens carry as `aud` instead of the URL. */
const GRAPH_APP_ID = '00000003-0000-0000-c000-000000000000';

export function graphBaseUrl(upstream: UpstreamConfig): string {
  return upstream.graph?.baseUrl ?? CLOUD_PRESETS.worldwide.graphBaseUrl;
}

/**
 * The audience Graph takes in this cloud: the preset's Graph, else the Graph of the cloud whose
 * host graph.baseUrl names, else the worldwide one (a proxy or a test server in between).
 */
export function expectedGraphAudience(upstream: UpstreamConfig): string {
  if (upstream.preset) return CLOUD_PRESETS[upstream.preset].graphBaseUrl;
  const origin = URL.canParse(graphBaseUrl(upstream)) ? new URL(graphBaseUrl(upstream)).origin : '';
  return Object.values(CLOUD_PRESETS).find((p) => p.graphBaseUrl === origin)?.graphBaseUrl ?? CLOUD_PRESETS.worldwide.graphBaseUrl;
}

/**
 * The Graph route's token: Graph's audience and the Mail.Send role. RBAC for Applications grants
 * Mail.Send without putting it in the token, so without the role only a test send can tell: with
 * one coming the missing role is a warning, without one it blocks.
 */
export function checkGraphClaims(report: DoctorReport, upstream: UpstreamConfig, auth: OAuth2AuthConfig, token: TokenResult, sendTest: boolean): void {
  const { claims } = token;
  const audience = expectedGraphAudience(upstream);
  if (claims.aud && claims.aud !== audience && claims.aud !== GRAPH_APP_ID) {
    report.fail(
      'claims',
      `the token's audience is ${claims.aud}, not Microsoft Graph (${audience})`,
      `set upstream.auth.scope to ${audience}/.default, or leave it out with upstream.preset set (the preset fills it for route graph)`,
    );
  }
  if (!(claims.roles ?? []).includes(MAIL_SEND_ROLE)) {
    const detail =
      `the token has no ${MAIL_SEND_ROLE} role: the app lacks the Microsoft Graph application permission or its admin consent ` +
      `(an RBAC for Applications assignment for the mailbox does not show in the token: ${sendTest ? 'the test send below checks it' : '--send-test ADDRESS checks it by a test send'})`;
    const fix = `Entra admin center > App registrations > ${auth.clientId} > API permissions > Add a permission > Microsoft Graph > Application permissions > Mail.Send, then "Grant admin consent"`;
    if (!sendTest) report.fail('claims', detail, fix);
    report.warn('claims', detail, fix);
    return;
  }
  report.ok('claims', `tenant, audience and the ${MAIL_SEND_ROLE} role are right`);
}

/**
 * Graph documents no read-only call that Mail.Send alone allows (reading a user needs
 * User.Read.All, a folder Mail.ReadBasic). The Sent Items search that delivery makes before a
 * resend is harmless and shows what matters: 401 the token is refused, 404 there is no such
 * mailbox, 403 the token is fine but the duplicate check cannot work (Mail.ReadBasic.All is optional).
 */
export async function checkGraphMailbox(report: DoctorReport, upstream: UpstreamConfig, auth: OAuth2AuthConfig, token: TokenResult): Promise<void> {
  const baseUrl = graphBaseUrl(upstream);
  const host = URL.canParse(baseUrl) ? new URL(baseUrl).host : baseUrl;
  const mailbox = auth.user;
  const saveToSentItems = upstream.graph?.saveToSentItems ?? true;
  const answer = await lookUpSentItem({ baseUrl, mailbox, token: token.token, internetMessageId: `<smarthost-doctor-${randomUUID()}@invalid>`, timeoutMs: upstream.timeouts.connect });
  if (answer.found === true || answer.found === false) {
    report.ok(
      'graph',
      `${host} accepted the token and searched Sent Items of ${mailbox}` +
        (saveToSentItems ? ': a retry after a lost answer looks there before resending' : ' (not used: graph.saveToSentItems is off, so a retry after a lost answer may send twice)'),
    );
    return;
  }
  if (answer.found === 'forbidden' && answer.status === 401) {
    const failure = graphReplies.tokenRefused({ status: answer.status, code: answer.code, message: undefined });
    report.fail('graph', `${host} refused the token (HTTP 401 ${answer.code ?? ''})`.replace(/ \)$/, ')'), classifyReply(failure, { mailbox }).operatorAction);
  }
  if (answer.found === 'forbidden') {
    if (!saveToSentItems) {
      report.info('graph', `${host} accepted the token (Sent Items not searched: graph.saveToSentItems is off)`);
      return;
    }
    const forbidden = sentItemsForbidden(mailbox, auth.clientId, answer.status, answer.code);
    report.warn('graph', `${host} accepted the token, but ${forbidden.problem}`, forbidden.fix);
    return;
  }
  if (answer.status === 404) {
    const failure = graphReplies.mailboxNotFound({ status: 404, code: answer.code, message: undefined }, mailbox);
    report.fail('graph', `${host} has no Exchange Online mailbox ${mailbox} (HTTP 404 ${answer.code ?? ''})`.replace(/ \)$/, ')'), classifyReply(failure, { mailbox }).operatorAction);
  }
  if (answer.status !== undefined) {
    // 429 or 5xx: Graph is there and took the request; it says nothing about the app or the mailbox.
    report.warn('graph', `${host} could not answer now (${answer.detail}); run doctor again later`);
    return;
  }
  report.fail('graph', `no answer from ${baseUrl} (${answer.detail})`, `check that this machine reaches ${host} on port 443 (proxy, firewall)`);
}

/**
 * With `sendTestTo`, one sendMail per address through the submitter delivery uses, so a refusal
 * gets the fix delivery would log (Mail.Send, RBAC for Applications scope, an access policy,
 * SendAs). Without it nothing proves the send permission, and the line says so.
 */
export async function checkGraphSenders(
  report: DoctorReport,
  upstream: UpstreamConfig,
  auth: OAuth2AuthConfig,
  token: TokenResult,
  senders: readonly string[],
  sendTestTo: string | undefined,
): Promise<void> {
  const mailbox = auth.user;
  if (!sendTestTo) {
    report.info(
      'send-as',
      `${senders.join(', ')}: not checked: a Mail.Send-only app has no Graph call that proves it may send as ${mailbox} short of sending, so the mailbox and each SendAs grant are checked only by a test send (--send-test ADDRESS)`,
    );
    return;
  }
  const baseUrl = graphBaseUrl(upstream);
  const submitter = new GraphSubmitter({
    baseUrl,
    mailbox,
    tokens: { getToken: async () => token.token },
    saveToSentItems: upstream.graph?.saveToSentItems ?? true,
    timeoutMs: upstream.timeouts.socket,
    appId: auth.clientId,
    limiter: graphMailboxLimiter({ baseUrl, appId: auth.clientId, mailbox }, { sharedBy: 1 }),
  });
  try {
    for (const sender of senders) {
      try {
        const result = await submitter.submit({ id: `doctor-${randomUUID()}`, from: sender, to: [sendTestTo], raw: Readable.from([Buffer.from(testMessage(sender, sendTestTo))]) });
        report.ok('send-as', `${sender}: test message to ${sendTestTo} accepted (${result.response ?? ''})`);
      } catch (error) {
        if (!(error instanceof SubmitError)) throw error;
        const c = classifyReply(error.failure, { mailbox, sender });
        report.add({ step: 'send-as', status: 'fail', detail: `${sender}: sendMail refused: ${error.failure.response ?? error.failure.message ?? c.reason}`, ...(c.operatorAction ? { fix: c.operatorAction } : {}) });
      }
    }
  } finally {
    await submitter.close();
  }
}
