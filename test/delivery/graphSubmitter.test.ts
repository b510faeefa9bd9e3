import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { Readable } from 'node:stream';
import { after, before, test } from 'node:test';
import { classifyReply } from '../../delivery/classifyReply.ts';
import { GraphMailboxLimiter } from '../../delivery/graph/graphLimits.ts';
import { GraphSubmitter } from '../../delivery/graph/graphSubmitter.ts';
import { SubmitError } from '../../delivery/smtp/submission.ts';
import { GRAPH_RESOURCE, MAIL_SEND_ROLE, startFakeGraph, type FakeGraph } from '../../testbed/fakes/fakeGraph.ts';
import { signJwt } from '../../testbed/fakes/jwt.ts';

const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const token = (aud: string, roles: string[]) => signJwt('RS256', {}, { aud, roles }, privateKey);
const MAILBOX = 'relay@contoso.example';
const MIME = 'From: a@contoso.example\r\nTo: b@contoso.example\r\nSubject: hi\r\n\r\nbody\r\n';
let graph: FakeGraph;

before(async () => { graph = await startFakeGraph({ mailboxes: [MAILBOX] }); });
after(async () => { await graph.close(); });

function submitter(tok: string, mailbox = MAILBOX) {
  return new GraphSubmitter({ baseUrl: graph.url, mailbox, tokens: { getToken: async () => tok }, saveToSentItems: false, timeoutMs: 5000, appId: 'app-1', limiter: new GraphMailboxLimiter(mailbox, { sharedBy: 1 }) });
}
const message = (raw: string | Buffer) => ({ id: 'm1', from: 'a@contoso.example', to: ['b@contoso.example'], raw: Readable.from([Buffer.from(raw)]) });

async function failureOf(promise: Promise<unknown>): Promise<SubmitError> {
  const error = await promise.then(() => undefined, (e: unknown) => e);
  assert.ok(error instanceof SubmitError);
  return error;
}

test('202 accepts every recipient and Graph gets the exact MIME bytes', async () => {
  const result = await submitter(token(GRAPH_RESOURCE, [MAIL_SEND_ROLE])).submit(message(MIME));
  assert.deepEqual(result.accepted, ['b@contoso.example']);
  const last = graph.sent.at(-1);
  assert.equal(last?.mime.toString(), MIME);
  assert.equal(last?.saveToSentItems, false);
});

test('a token without Mail.Send is config with the RBAC fix naming the app', async () => {
  const error = await failureOf(submitter(token(GRAPH_RESOURCE, [])).submit(message(MIME)));
  assert.equal(error.failure.responseCode, 535);
  const classified = classifyReply(error.failure, { mailbox: MAILBOX });
  assert.equal(classified.kind, 'config');
  assert.match(classified.operatorAction ?? '', /New-ManagementRoleAssignment -App app-1 -Role "Application Mail.Send" -CustomResourceScope "smarthost relay@contoso.example"/);
});

test('an unknown sending mailbox is held for the operator with the check to make', async () => {
  const error = await failureOf(submitter(token(GRAPH_RESOURCE, [MAIL_SEND_ROLE]), 'nobody@contoso.example').submit(message(MIME)));
  assert.match(error.failure.response ?? '', /^550 5\.1\.8 Graph HTTP 404 ErrorInvalidUser/);
  const classified = classifyReply(error.failure, { mailbox: 'nobody@contoso.example' });
  assert.equal(classified.kind, 'config');
  assert.match(classified.operatorAction ?? '', /Get-EXOMailbox -Identity nobody@contoso\.example/);
});

test('429 with Retry-After is transient and names the delay', async () => {
  graph.throttleNext(1, 7);
  const error = await failureOf(submitter(token(GRAPH_RESOURCE, [MAIL_SEND_ROLE])).submit(message(MIME)));
  assert.equal(error.failure.responseCode, 451);
  assert.match(error.failure.response ?? '', /Retry-After 7s/);
  assert.equal(classifyReply(error.failure).kind, 'transient');
  assert.equal(classifyReply(error.failure).throttled, true);
});

test('504 after accepting is "may have been sent"', async () => {
  graph.ambiguousNext();
  const before = graph.sent.length;
  const error = await failureOf(submitter(token(GRAPH_RESOURCE, [MAIL_SEND_ROLE])).submit(message(MIME)));
  assert.equal(error.failure.code, 'EGRAPH_MAYBE_SENT');
  assert.equal(graph.sent.length, before + 1);
  assert.equal(classifyReply(error.failure).maybeSent, true);
});

test('a 20 MB scan is refused before any request as message too large', async () => {
  const before = graph.sent.length;
  const big = Buffer.concat([Buffer.from(MIME), Buffer.alloc(20 * 1024 * 1024, 0x41)]);
  const error = await failureOf(submitter(token(GRAPH_RESOURCE, [MAIL_SEND_ROLE])).submit(message(big)));
  assert.equal(error.failure.responseCode, 552);
  assert.equal(classifyReply(error.failure).kind, 'permanent');
  assert.match(classifyReply(error.failure).reason, /upstream\.graph\.largeMessages: smtp/);
  assert.equal(graph.sent.length, before);
});

test('HVE 550 5.5.105 is permanent, 501 5.5.127 transient', () => {
  assert.equal(classifyReply({ responseCode: 550, response: '550 5.5.105 External sending is not supported for High Volume Email accounts' }).kind, 'permanent');
  assert.equal(classifyReply({ responseCode: 501, response: '501 5.5.127 Invalid XOAUTH2 auth data - Token will expire soon' }).kind, 'transient');
});
