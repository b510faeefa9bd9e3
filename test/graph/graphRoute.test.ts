import assert from 'node:assert/strict';
import { createHash, generateKeyPairSync } from 'node:crypto';
import { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { classifyReply } from '../../delivery/classifyReply.ts';
import { createUpstreamSubmitter } from '../../delivery/createUpstreamSubmitter.ts';
import { deliverMessage } from '../../delivery/deliverMessage.ts';
import { GraphMailboxLimiter } from '../../delivery/graph/graphLimits.ts';
import { AmbiguousSubmissionError, GraphSubmitter } from '../../delivery/graph/graphSubmitter.ts';
import { describeEvent } from '../../delivery/history/describeEvent.ts';
import { silentLogger, type DeliveryLogger } from '../../delivery/logger.ts';
import { settleAttempt } from '../../delivery/settle/settleAttempt.ts';
import { SubmitError } from '../../delivery/smtp/submission.ts';
import { submitterForUpstream } from '../../delivery/submitterForUpstream.ts';
import { parseUpstreamConfig } from '../../delivery/upstreamConfig.ts';
import { GRAPH_RESOURCE, MAIL_SEND_ROLE, startFakeGraph, type FakeGraph } from '../../testbed/fakes/fakeGraph.ts';
import { signJwt } from '../../testbed/fakes/jwt.ts';

const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const APP = 'aaaaaaaa-0000-0000-0000-00000000000a';
const MAILBOX = 'relay@contoso.com';
const token = (roles: string[], aud = GRAPH_RESOURCE) => signJwt('RS256', {}, { aud, roles, appid: APP, exp: Math.floor(Date.now() / 1000) + 3600 }, privateKey);
const mime = (id: string, from = MAILBOX) => `From: ${from}\r\nTo: you@contoso.com\r\nMessage-ID: <${id}@contoso.com>\r\nSubject: scan\r\n\r\nbody\r\n`;
const message = (raw: string | Buffer, earlierAttempts = 0, from = MAILBOX) => ({ id: 'm', from, to: ['you@contoso.com'], raw: Readable.from([Buffer.from(raw)]), earlierAttempts });

function submitter(graph: FakeGraph, options: { roles?: string[]; saveToSentItems?: boolean; timeoutMs?: number; mailbox?: string; aud?: string } = {}) {
  const tok = token(options.roles ?? [MAIL_SEND_ROLE], options.aud);
  const mailbox = options.mailbox ?? MAILBOX;
  return new GraphSubmitter({
    baseUrl: graph.url,
    mailbox,
    tokens: { getToken: async () => tok },
    saveToSentItems: options.saveToSentItems ?? true,
    timeoutMs: options.timeoutMs ?? 5000,
    appId: APP,
    limiter: new GraphMailboxLimiter(mailbox, { sharedBy: 1 }),
  });
}

async function failureOf(promise: Promise<unknown>): Promise<SubmitError> {
  const error = await promise.then(() => undefined, (e: unknown) => e);
  assert.ok(error instanceof SubmitError, `expected a SubmitError, got ${String(error)}`);
  return error;
}

describe('Graph route: throttling per mailbox', () => {
  let graph: FakeGraph;
  before(async () => { graph = await startFakeGraph({ mailboxes: [MAILBOX], publicKey, responseDelayMs: 0 }); });
  after(async () => { await graph.close(); });

  for (const status of [429, 503] as const) {
    test(`${status} with Retry-After defers the message and holds every later send to the mailbox until it has passed`, async () => {
      const route = submitter(graph);
      graph.throttleNext(1, 1, status);
      const throttledAt = Date.now();
      const error = await failureOf(route.submit(message(mime(`t${status}a`))));
      const classified = classifyReply(error.failure, { mailbox: MAILBOX });
      assert.equal(classified.kind, 'transient');
      assert.equal(classified.throttled, true);
      assert.match(classified.reason, /every later send to it waits for the Retry-After/);
      const requestsBefore = graph.requests.length;
      await route.submit(message(mime(`t${status}b`)));
      const next = graph.requests.slice(requestsBefore);
      assert.equal(next.length, 1, 'the next message went once');
      assert.ok((next[0]?.at ?? 0) - throttledAt >= 950, `no request before Retry-After passed (${(next[0]?.at ?? 0) - throttledAt} ms)`);
    });
  }

  test('a Retry-After longer than the submitter waits defers later messages without a request', async () => {
    const route = submitter(graph);
    graph.throttleNext(1, 300);
    await failureOf(route.submit(message(mime('long-a'))));
    const requestsBefore = graph.requests.length;
    const error = await failureOf(route.submit(message(mime('long-b'))));
    assert.equal(graph.requests.length, requestsBefore, 'nothing sent while Graph asked for 300 s');
    assert.equal(error.failure.code, 'EGRAPH_BUSY');
    const classified = classifyReply(error.failure);
    assert.equal(classified.kind, 'transient');
    assert.equal(classified.throttled, true);
  });
});

describe('Graph route: at most 4 requests at once per mailbox', () => {
  let graph: FakeGraph;
  before(async () => { graph = await startFakeGraph({ mailboxes: [MAILBOX], publicKey, responseDelayMs: 150 }); });
  after(async () => { await graph.close(); });

  test('ten parallel messages on one mailbox reach Graph 4 at a time, none throttled', async () => {
    const route = submitter(graph);
    await Promise.all(Array.from({ length: 10 }, (_, i) => route.submit(message(mime(`c${i}`)))));
    assert.equal(graph.sent.length, 10);
    assert.equal(Math.max(...graph.requests.map((r) => r.concurrent)), 4);
    assert.ok(graph.requests.every((r) => r.status === 202));
  });
});

describe('Graph route: ambiguous outcomes and Sent Items', () => {
  let graph: FakeGraph;
  before(async () => { graph = await startFakeGraph({ mailboxes: [MAILBOX], publicKey }); });
  after(async () => { await graph.close(); });

  test('504 after the request left: AmbiguousSubmission, "may have been sent" in the history; the retry finds it in Sent Items and sends nothing', async () => {
    const route = submitter(graph, { roles: [MAIL_SEND_ROLE, 'Mail.ReadBasic.All'] });
    graph.ambiguousNext('504');
    const envelope = { id: 'amb504-0000001', receivedAt: new Date().toISOString(), client: { name: 'scanner', ip: '10.0.0.5' }, helo: 'scanner', mailFrom: MAILBOX, rcptTo: ['you@contoso.com'], size: 10, sha256: '' };
    const body = mime('amb504');
    const outcome = await deliverMessage({ envelope, rcptTo: envelope.rcptTo, openBody: () => Readable.from([Buffer.from(body)]), mailbox: MAILBOX }, route, silentLogger);
    assert.equal(outcome.deferred.length, 1);
    assert.equal(outcome.deferred[0]?.classification.maybeSent, true);
    const settled = settleAttempt({
      messageId: envelope.id,
      progress: { attempts: 0, delivered: [], refused: [], receivedAt: envelope.receivedAt },
      outcome,
      policy: { scheduleMs: [60_000], maxAgeMs: 86_400_000 },
      now: new Date(),
      attempt: { route: 'graph', mailbox: MAILBOX, startedAt: new Date() },
    });
    assert.equal(settled.event.maybeSent, true);
    assert.equal(settled.decision.action, 'retry');
    assert.match(describeEvent(settled.event).text, /may have been sent/);
    assert.equal(graph.sent.length, 1, 'Graph took it');

    const retry = await deliverMessage({ envelope, rcptTo: envelope.rcptTo, openBody: () => Readable.from([Buffer.from(body)]), mailbox: MAILBOX, earlierAttempts: 1 }, route, silentLogger);
    assert.deepEqual(retry.accepted, ['you@contoso.com']);
    assert.equal(graph.sent.length, 1, 'not sent twice');
  });

  test('a request Graph never answers is ambiguous after the timeout; the retry finds the copy', async () => {
    const route = submitter(graph, { roles: [MAIL_SEND_ROLE, 'Mail.Read'], timeoutMs: 400 });
    graph.ambiguousNext('hang');
    const sentBefore = graph.sent.length;
    const error = await failureOf(route.submit(message(mime('hang'))));
    assert.ok(error instanceof AmbiguousSubmissionError);
    assert.match(error.failure.message, /within the timeout; the message may have been sent/);
    const result = await route.submit(message(mime('hang'), 1));
    assert.match(result.response ?? '', /already in Sent Items/);
    assert.equal(graph.sent.length, sentBefore + 1);
  });

  test('without a Mail.Read permission the retry resends, with one warning naming the permission', async () => {
    const route = submitter(graph, { roles: [MAIL_SEND_ROLE] });
    graph.ambiguousNext('504');
    await failureOf(route.submit(message(mime('noread'))));
    const warnings: string[] = [];
    const logger: DeliveryLogger = { ...silentLogger, warn: (fields) => warnings.push(String(fields.warning)) };
    const envelope = { id: 'noread-0000001', receivedAt: new Date().toISOString(), client: { name: 's', ip: '10.0.0.5' }, helo: 's', mailFrom: MAILBOX, rcptTo: ['you@contoso.com'], size: 10, sha256: '' };
    const retry = await deliverMessage({ envelope, rcptTo: envelope.rcptTo, openBody: () => Readable.from([Buffer.from(mime('noread'))]), earlierAttempts: 1 }, route, logger);
    assert.deepEqual(retry.accepted, ['you@contoso.com']);
    assert.equal(graph.sent.filter((m) => m.internetMessageId === '<noread@contoso.com>').length, 2, 'resent: a duplicate is possible');
    assert.equal(warnings.length, 1);
    assert.match(warnings[0] ?? '', /Mail\.ReadBasic\.All/);
  });

  test('when Sent Items cannot be searched now, nothing is resent (transient)', async () => {
    const route = submitter(graph, { roles: [MAIL_SEND_ROLE, 'Mail.ReadBasic.All'] });
    const sentBefore = graph.sent.length;
    graph.failNext(1, 500, 'InternalServerError');
    const error = await failureOf(route.submit(message(mime('lookupfail'), 2)));
    assert.equal(error.failure.code, 'EGRAPH_LOOKUP');
    assert.equal(classifyReply(error.failure).kind, 'transient');
    assert.equal(graph.sent.length, sentBefore);
  });

  test('with saveToSentItems off there is nothing to look up: the retry sends again', async () => {
    const route = submitter(graph, { roles: [MAIL_SEND_ROLE, 'Mail.Read'], saveToSentItems: false });
    const requestsBefore = graph.requests.length;
    await route.submit(message(mime('nosave'), 1));
    assert.deepEqual(graph.requests.slice(requestsBefore).map((r) => r.path), [`/v1.0/users/${encodeURIComponent(MAILBOX)}/sendMail`]);
  });
});

describe('Graph route: refusals with their fixes', () => {
  let graph: FakeGraph;
  before(async () => {
    graph = await startFakeGraph({
      mailboxes: [MAILBOX, 'hr@contoso.com', 'rbac@contoso.com'],
      publicKey,
      accessPolicy: { [APP]: [MAILBOX, 'rbac@contoso.com'] },
      rbac: { [APP]: ['rbac@contoso.com'] },
      sendAs: { [MAILBOX]: ['scanner@contoso.com'] },
    });
  });
  after(async () => { await graph.close(); });

  test('RBAC for Applications covering the mailbox sends without Mail.Send in the token', async () => {
    const result = await submitter(graph, { roles: [], mailbox: 'rbac@contoso.com' }).submit(message(mime('rbac', 'rbac@contoso.com'), 0, 'rbac@contoso.com'));
    assert.equal(result.response, '202 Accepted (Graph sendMail)');
  });

  test('no Mail.Send and no RBAC assignment: held, with the scoped assignment filled in', async () => {
    const error = await failureOf(submitter(graph, { roles: [] }).submit(message(mime('norole'))));
    const classified = classifyReply(error.failure, { mailbox: MAILBOX, sender: MAILBOX });
    assert.equal(classified.kind, 'config');
    assert.match(
      classified.operatorAction ?? '',
      new RegExp(`New-ManagementScope -Name "smarthost ${MAILBOX}" -RecipientRestrictionFilter "PrimarySmtpAddress -eq '${MAILBOX}'", New-ManagementRoleAssignment -App ${APP} -Role "Application Mail.Send" -CustomResourceScope "smarthost ${MAILBOX}"`),
    );
  });

  test('Mail.Send kept from the mailbox by an application access policy names the policy test and the RBAC move', async () => {
    const error = await failureOf(submitter(graph, { mailbox: 'hr@contoso.com' }).submit(message(mime('policy', 'hr@contoso.com'), 0, 'hr@contoso.com')));
    const classified = classifyReply(error.failure, { mailbox: 'hr@contoso.com' });
    assert.equal(classified.kind, 'config');
    assert.match(classified.operatorAction ?? '', new RegExp(`Test-ApplicationAccessPolicy -Identity hr@contoso.com -AppId ${APP}`));
  });

  test('ErrorSendAsDenied is held with the SendAs grant for the mailbox', async () => {
    const error = await failureOf(submitter(graph).submit(message(mime('sendas', 'printer@contoso.com'), 0, 'printer@contoso.com')));
    const classified = classifyReply(error.failure, { mailbox: MAILBOX, sender: 'printer@contoso.com' });
    assert.equal(classified.kind, 'config');
    assert.equal(classified.operatorAction?.startsWith(`Add-RecipientPermission -Identity printer@contoso.com -AccessRights SendAs -Trustee ${MAILBOX}`), true);
  });

  test('a token for another resource, or signed by another key, is 401 with the scope fix', async () => {
    for (const route of [submitter(graph, { aud: 'https://outlook.office365.com' }), new GraphSubmitter({ baseUrl: graph.url, mailbox: MAILBOX, tokens: { getToken: async () => signJwt('RS256', {}, { aud: GRAPH_RESOURCE, roles: [MAIL_SEND_ROLE], appid: APP }, generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey) }, saveToSentItems: true, timeoutMs: 5000, appId: APP, limiter: new GraphMailboxLimiter(MAILBOX, { sharedBy: 1 }) })]) {
      const error = await failureOf(route.submit(message(mime('aud'))));
      assert.match(error.failure.response ?? '', /^535 5\.7\.3 Graph HTTP 401 InvalidAuthenticationToken/);
      assert.match(classifyReply(error.failure).operatorAction ?? '', /upstream\.auth\.scope: https:\/\/graph\.microsoft\.com\/\.default/);
    }
  });
});

describe('Graph route in the cloud runtimes: the mailbox rate as on SMTP', () => {
  const upstream = (extra: Record<string, unknown> = {}) => {
    const parsed = parseUpstreamConfig({
      preset: 'worldwide',
      route: 'graph',
      auth: { type: 'oauth2', tenantId: 'contoso.onmicrosoft.com', clientId: APP, clientSecret: 's', user: MAILBOX },
      rateLimit: { perMinute: 30, connections: 3 },
      ...extra,
    });
    assert.ok(parsed.ok);
    return parsed.config;
  };

  test('the Lambda (sharedBy instances) waits on its part of perMinute and of Graph limits; the embedded loop schedules itself', () => {
    const lambda = createUpstreamSubmitter(upstream(), 2).submitter;
    assert.ok(lambda instanceof GraphSubmitter);
    assert.deepEqual([lambda.limiter.perMinute, lambda.limiter.concurrentRequests, lambda.limiter.requestsPerWindow], [15, 2, 5000]);
    const embedded = createUpstreamSubmitter(upstream({ graph: { saveToSentItems: false } }), 1, true).submitter;
    assert.ok(embedded instanceof GraphSubmitter);
    assert.equal(embedded.limiter.perMinute, undefined);
  });

  test('smarthost worker (submitterForUpstream without callerLimitsRate) waits on perMinute', async () => {
    const { submitter } = await submitterForUpstream(upstream({ rateLimit: { perMinute: 12, connections: 3 } }));
    assert.ok(submitter instanceof GraphSubmitter);
    assert.equal(submitter.limiter.perMinute, 12);
  });

  test('route graph takes its token scope from Graph even without a preset', () => {
    const parsed = parseUpstreamConfig({ route: 'graph', host: 'smtp.office365.com', auth: { type: 'oauth2', tenantId: 't', clientId: APP, clientSecret: 's', user: MAILBOX } });
    assert.ok(parsed.ok);
    assert.equal(parsed.config.auth.type === 'oauth2' && parsed.config.auth.scope, 'https://graph.microsoft.com/.default');
  });

  test('graph.largeMessages: upload, or on route smtp, is a config error naming the key', () => {
    const upload = parseUpstreamConfig({ ...{ preset: 'worldwide', route: 'graph' }, graph: { largeMessages: 'upload' }, auth: { type: 'oauth2', tenantId: 't', clientId: APP, clientSecret: 's', user: MAILBOX } }, ['upstream']);
    assert.equal(upload.ok, false);
    assert.match(!upload.ok ? upload.problems.join('\n') : '', /^upstream\.graph\.largeMessages: upload .*not built yet: use smtp/m);
    const smtpRoute = parseUpstreamConfig({ preset: 'worldwide', graph: { largeMessages: 'smtp' }, auth: { type: 'oauth2', tenantId: 't', clientId: APP, clientSecret: 's', user: MAILBOX } }, ['upstream']);
    assert.match(!smtpRoute.ok ? smtpRoute.problems.join('\n') : '', /^upstream\.graph\.largeMessages: applies to route graph only/m);
  });
});

export const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');
