import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { FAKE_GRAPH_MAX_REQUEST_BYTES, GRAPH_RESOURCE, MAIL_SEND_ROLE, startFakeGraph, type FakeGraph } from '../../testbed/fakes/fakeGraph.ts';
import { signJwt } from '../../testbed/fakes/jwt.ts';

const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const APP = 'app-1';
const MAILBOX = 'relay@contoso.com';
const token = (claims: Record<string, unknown> = {}, key = privateKey) =>
  signJwt('RS256', {}, { aud: GRAPH_RESOURCE, roles: [MAIL_SEND_ROLE], appid: APP, exp: Math.floor(Date.now() / 1000) + 600, ...claims }, key);
const mime = (id: string, from = MAILBOX) => Buffer.from(`From: ${from}\r\nTo: you@contoso.com\r\nMessage-ID: <${id}@contoso.com>\r\nSubject: t\r\n\r\nx\r\n`).toString('base64');

async function call(graph: FakeGraph, path: string, init: { method?: string; token?: string; body?: string; contentType?: string } = {}) {
  const response = await fetch(`${graph.url}${path}`, {
    method: init.method ?? 'POST',
    headers: { authorization: `Bearer ${init.token ?? token()}`, ...(init.body !== undefined ? { 'content-type': init.contentType ?? 'text/plain' } : {}) },
    ...(init.body !== undefined ? { body: init.body } : {}),
  });
  const text = await response.text();
  return { status: response.status, code: text ? (JSON.parse(text) as { error?: { code?: string } }).error?.code : undefined, retryAfter: response.headers.get('retry-after'), json: text ? (JSON.parse(text) as { value?: unknown[] }) : undefined };
}
const sendPath = (mailbox = MAILBOX, query = '') => `/v1.0/users/${encodeURIComponent(mailbox)}/sendMail${query}`;
const lookupPath = (id: string) => `/v1.0/users/${encodeURIComponent(MAILBOX)}/mailFolders/SentItems/messages?$filter=${encodeURIComponent(`internetMessageId eq '${id}'`)}`;

describe('fake Graph (sendMail, Sent Items, limits)', () => {
  let graph: FakeGraph;
  before(async () => {
    graph = await startFakeGraph({
      mailboxes: [MAILBOX, 'rbac@contoso.com', 'other@contoso.com'],
      publicKey,
      rbac: { 'rbac-app': ['rbac@contoso.com'] },
      sendAs: { [MAILBOX]: ['scanner@contoso.com'] },
    });
  });
  after(async () => { await graph.close(); });

  test('checks the token: signature, expiry, audience; Mail.Send in the token or an RBAC assignment', async () => {
    assert.deepEqual(await call(graph, sendPath(), { body: mime('a'), token: token({}, generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey) }).then((r) => [r.status, r.code]), [401, 'InvalidAuthenticationToken']);
    assert.equal((await call(graph, sendPath(), { body: mime('a'), token: token({ exp: 1 }) })).status, 401);
    assert.equal((await call(graph, sendPath(), { body: mime('a'), token: token({ aud: 'https://outlook.office365.com' }) })).status, 401);
    assert.deepEqual(await call(graph, sendPath(), { body: mime('a'), token: token({ roles: [] }) }).then((r) => [r.status, r.code]), [403, 'ErrorAccessDenied']);
    const rbac = token({ roles: [], appid: 'rbac-app' });
    assert.equal((await call(graph, sendPath('rbac@contoso.com'), { body: mime('r', 'rbac@contoso.com'), token: rbac })).status, 202);
    assert.equal((await call(graph, sendPath('other@contoso.com'), { body: mime('r', 'other@contoso.com'), token: rbac })).status, 403, 'the assignment covers one mailbox');
  });

  test('sendMail: 202 for base64 MIME as text/plain; unknown mailbox, other content types, bad base64, SendAs and size refused as Graph does', async () => {
    assert.equal((await call(graph, sendPath(), { body: mime('ok') })).status, 202);
    assert.equal(graph.sent.at(-1)?.internetMessageId, '<ok@contoso.com>');
    assert.deepEqual(await call(graph, sendPath('nobody@contoso.com'), { body: mime('x') }).then((r) => [r.status, r.code]), [404, 'ErrorInvalidUser']);
    assert.equal((await call(graph, sendPath(), { body: mime('x'), contentType: 'application/json' })).status, 400);
    assert.deepEqual(await call(graph, sendPath(), { body: 'not base64!' }).then((r) => [r.status, r.code]), [400, 'ErrorMimeContentInvalidBase64String']);
    assert.deepEqual(await call(graph, sendPath(), { body: mime('x', 'printer@contoso.com') }).then((r) => [r.status, r.code]), [403, 'ErrorSendAsDenied']);
    assert.equal((await call(graph, sendPath(), { body: mime('x', 'scanner@contoso.com') })).status, 202, 'a granted SendAs');
    assert.equal((await call(graph, sendPath(), { body: 'A'.repeat(FAKE_GRAPH_MAX_REQUEST_BYTES + 4) })).status, 413);
  });

  test('Sent Items: found by internetMessageId with a Mail.Read* role, not when saved off; 403 without the role', async () => {
    await call(graph, sendPath(), { body: mime('saved') });
    await call(graph, sendPath(MAILBOX, '?saveToSentItems=false'), { body: mime('unsaved') });
    const reader = token({ roles: [MAIL_SEND_ROLE, 'Mail.ReadBasic.All'] });
    assert.equal((await call(graph, lookupPath('<saved@contoso.com>'), { method: 'GET', token: reader })).json?.value?.length, 1);
    assert.equal((await call(graph, lookupPath('<unsaved@contoso.com>'), { method: 'GET', token: reader })).json?.value?.length, 0);
    assert.deepEqual(await call(graph, lookupPath('<saved@contoso.com>'), { method: 'GET' }).then((r) => [r.status, r.code]), [403, 'ErrorAccessDenied']);
  });

  test('scripted faults: 429/503 with Retry-After, 504 after taking the message', async () => {
    graph.throttleNext(1, 9, 503);
    assert.deepEqual(await call(graph, sendPath(), { body: mime('t') }).then((r) => [r.status, r.retryAfter]), [503, '9']);
    const before = graph.sent.length;
    graph.ambiguousNext('504');
    assert.equal((await call(graph, sendPath(), { body: mime('amb') })).status, 504);
    assert.equal(graph.sent.length, before + 1, 'taken although the answer was 504');
  });
});

describe('fake Graph: limits per app and mailbox', () => {
  test('requests per window and upload bytes per window answer 429 ApplicationThrottled with Retry-After', async () => {
    const graph = await startFakeGraph({ mailboxes: [MAILBOX, 'other@contoso.com'], publicKey, limits: { requests: 3, uploadBytes: 1_000_000 }, retryAfterSeconds: 5 });
    try {
      for (let i = 0; i < 3; i++) assert.equal((await call(graph, sendPath(), { body: mime(`r${i}`) })).status, 202);
      assert.deepEqual(await call(graph, sendPath(), { body: mime('r3') }).then((r) => [r.status, r.code, r.retryAfter]), [429, 'ApplicationThrottled', '5']);
      assert.equal((await call(graph, sendPath('other@contoso.com'), { body: mime('o', 'other@contoso.com') })).status, 202, 'another mailbox has its own budget');
      const big = Buffer.from(`From: other@contoso.com\r\n\r\n${'x'.repeat(700_000)}`).toString('base64');
      assert.equal((await call(graph, sendPath('other@contoso.com'), { body: big })).status, 202, 'within the upload budget');
      assert.equal((await call(graph, sendPath('other@contoso.com'), { body: big })).status, 429, 'over the upload budget');
    } finally {
      await graph.close();
    }
  });

  test("Exchange Online's message rate: past messagesPerMinute in 60 s a sendMail is 429 and nothing is sent; another mailbox is not held", async () => {
    const graph = await startFakeGraph({ mailboxes: [MAILBOX, 'other@contoso.com'], publicKey, messagesPerMinute: 2, retryAfterSeconds: 7 });
    try {
      for (let i = 0; i < 2; i++) assert.equal((await call(graph, sendPath(), { body: mime(`m${i}`) })).status, 202);
      assert.deepEqual(await call(graph, sendPath(), { body: mime('m2') }).then((r) => [r.status, r.code, r.retryAfter]), [429, 'ApplicationThrottled', '7']);
      assert.equal(graph.sent.length, 2);
      assert.equal((await call(graph, sendPath('other@contoso.com'), { body: mime('o', 'other@contoso.com') })).status, 202);
    } finally {
      await graph.close();
    }
  });

  test('a fifth concurrent request to one mailbox is throttled', async () => {
    const graph = await startFakeGraph({ mailboxes: [MAILBOX], publicKey, responseDelayMs: 200 });
    try {
      const statuses = await Promise.all(Array.from({ length: 5 }, (_, i) => call(graph, sendPath(), { body: mime(`c${i}`) }).then((r) => r.status)));
      assert.deepEqual(statuses.sort(), [202, 202, 202, 202, 429]);
    } finally {
      await graph.close();
    }
  });
});
