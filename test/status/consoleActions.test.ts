import assert from 'node:assert/strict';
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { SubmitError, type Submitter } from '../../delivery/smtp/submission.ts';
import { makeTempDir, sendRaw, startTestAgent, waitForAttempt, type TestAgent } from '../../testbed/helpers/agentHarness.ts';
import { seedSpool, type SeededSpool } from './seedSpool.ts';
import { metricValue } from '../../testbed/helpers/metricValue.ts';

/** The console's actions and pages over HTTP: release, delete, body download, escaping, and the metrics that follow. */

const USER = 'admin';
const PASSWORD = 'console-pass-123';
const AUTH = { authorization: `Basic ${Buffer.from(`${USER}:${PASSWORD}`).toString('base64')}` };

async function csrfFor(base: string, id: string, action: string): Promise<string> {
  const page = await (await fetch(`${base}/messages/${id}/confirm?action=${action}`, { headers: AUTH })).text();
  return /name="csrf" value="([^"]+)"/.exec(page)?.[1] as string;
}

async function post(base: string, id: string, action: string, csrf: string, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`${base}/messages/${id}/${action}`, { method: 'POST', redirect: 'manual', headers: { ...AUTH, 'content-type': 'application/x-www-form-urlencoded', ...headers }, body: `csrf=${encodeURIComponent(csrf)}&confirm=yes` });
}


describe('console actions over HTTP', () => {
  let agent: TestAgent;
  let seeded: SeededSpool;
  let base: string;

  before(async () => {
    const dir = await makeTempDir();
    seeded = await seedSpool(join(dir, 'spool'));
    agent = await startTestAgent({ status: { host: '127.0.0.1', port: 0, auth: { username: USER, password: PASSWORD } } }, {}, dir);
    base = `http://127.0.0.1:${agent.status?.address.port}`;
  });
  after(() => agent.dispose());

  it('releases a held message at once, records who did it, and counts the delivery', async () => {
    const csrf = await csrfFor(base, seeded.held.id, 'release');
    const delivered = waitForAttempt(agent, (r) => r.id === seeded.held.id && r.action === 'delivered');
    const response = await post(base, seeded.held.id, 'release', csrf);
    assert.equal(response.status, 303);
    assert.equal(response.headers.get('location'), `/messages/${seeded.held.id}?done=release`);
    await delivered;
    const history = await readFile(join(agent.config.spool.dir, 'history', `${seeded.held.id}.history.jsonl`), 'utf8');
    assert.match(history, /"type":"operator","messageId":"[^"]+","at":"[^"]+","action":"release","by":"admin \(console, 127\.0\.0\.1\)"/);
    const metrics = await (await fetch(`${base}/metrics`, { headers: AUTH })).text();
    assert.equal(metricValue(metrics, 'smarthost_messages_delivered_total'), 1);
    assert.equal(metricValue(metrics, 'smarthost_held_messages'), 0);
    assert.equal(metricValue(metrics, 'smarthost_delivery_attempts_total{outcome="delivered"}'), 1);
    assert.ok((metricValue(metrics, 'smarthost_upstream_last_success_timestamp_seconds') ?? 0) > Date.now() / 1000 - 60);
  });

  it('deletes a queued message after confirmation; its history is kept with the delete', async () => {
    const id = seeded.retrying.id;
    const response = await post(base, id, 'delete', await csrfFor(base, id, 'delete'));
    assert.equal(response.status, 303);
    assert.deepEqual((await readdir(agent.config.spool.dir + '/queue')).filter((n) => n.startsWith(id)), []);
    const page = await (await fetch(`${base}/messages/${id}?done=delete`, { headers: AUTH })).text();
    assert.match(page, /The message was deleted\. Its history is kept below\./);
    assert.match(page, /delete by admin \(console, 127\.0\.0\.1\)/);
    assert.equal((await fetch(`${base}/messages/${id}/confirm?action=delete`, { headers: AUTH })).status, 409, 'nothing left to delete');
  });

  it('refuses a form posted from another site even with a valid token', async () => {
    const csrf = await csrfFor(base, seeded.failed.id, 'delete');
    assert.equal((await post(base, seeded.failed.id, 'delete', csrf, { origin: 'http://evil.example' })).status, 403);
    assert.equal((await post(base, seeded.failed.id, 'delete', csrf, { 'sec-fetch-site': 'cross-site' })).status, 403);
    assert.equal((await post(base, seeded.failed.id, 'delete', 'x'.repeat(43))).status, 403);
  });

  it('gives the body to a signed-in operator only when asked, and logs it', async () => {
    const response = await fetch(`${base}/messages/${seeded.failed.id}/body`, { headers: AUTH });
    assert.equal(response.status, 200);
    assert.equal(response.headers.get('content-type'), 'message/rfc822');
    assert.match(await response.text(), /\r\n\r\nThe scanned document is attached\.\r\n$/);
    assert.ok(agent.logs.records().some((r) => r.msg === 'operator downloaded a message' && r.by === USER && r.messageId === seeded.failed.id));
  });

  it('escapes what a request or a device wrote', async () => {
    const page = await (await fetch(`${base}/queue?sender=${encodeURIComponent('"><script>alert(1)</script>')}`, { headers: AUTH })).text();
    assert.doesNotMatch(page, /<script>/);
    assert.ok(page.includes('value="&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;"'), 'the filter is echoed escaped');
    const { html } = await import('../../edge-agent/status/pages/html.ts');
    assert.equal(html`<td>${'<b>&"\''}</td>`.text, '<td>&lt;b&gt;&amp;&quot;&#39;</td>');
  });
});

describe('console without a credential on loopback', () => {
  let agent: TestAgent;
  const refusing: Submitter = {
    async submit(message) {
      for await (const _ of message.raw) {
        // Drain the body.
      }
      throw new SubmitError({ responseCode: 550, response: '550 5.7.60 SMTP; Client does not have permissions to send as this sender', command: 'DATA', message: 'send as denied' });
    },
    async close() {},
  };

  before(async () => {
    agent = await startTestAgent({ status: { host: '127.0.0.1', port: 0 } }, { submitter: refusing });
  });
  after(() => agent.dispose());

  it('says a held message stops the relay, counts it, and never shows a body without sign-in', async () => {
    const held = waitForAttempt(agent, (r) => r.action === 'retry');
    const reply = await sendRaw(agent.address.port, 'fax@contoso.com', ['bob@contoso.com'], 'Subject: fax\r\n\r\nsecret page\r\n');
    const id = /queued as (\S+)/.exec(reply)?.[1] as string;
    const record = await held;
    assert.equal(record.event.decision.action, 'hold');
    const base = `http://127.0.0.1:${agent.status?.address.port}`;
    const overview = await (await fetch(`${base}/`)).text();
    assert.match(overview, /Not working because 1 message is held until you fix the cause: 550 5\.7\.60 SMTP; Client does not have permissions to send as this sender\./);
    assert.match(overview, /signed in as loopback/);
    const body = await fetch(`${base}/messages/${id}/body`);
    assert.equal(body.status, 403);
    assert.equal(await body.text(), 'Message bodies are shown only to an operator who signed in: configure status.auth.\n');
    const page = await (await fetch(`${base}/messages/${id}`)).text();
    assert.doesNotMatch(page, /secret page/);
    const metrics = await (await fetch(`${base}/metrics`)).text();
    assert.equal(metricValue(metrics, 'smarthost_held_messages'), 1);
    assert.equal(metricValue(metrics, 'smarthost_delivery_held_total'), 1);
    assert.equal(metricValue(metrics, 'smarthost_messages_accepted_total'), 1);
    assert.equal((await fetch(`${base}/readyz`)).status, 200, 'an upstream that answers, even with a refusal, is reachable');
  });
});
