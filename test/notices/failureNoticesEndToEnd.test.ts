import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, afterEach, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { simpleParser } from 'mailparser';
import { sendRaw, startTestAgent, waitForAttempt, type TestAgent } from '../../testbed/helpers/agentHarness.ts';
import { RELAY_MAILBOX, startExchangeOnlineRig, type ExchangeOnlineRig } from '../../testbed/helpers/exchangeOnlineRig.ts';
import { pollUntil } from '../../testbed/helpers/pollUntil.ts';

const ADMIN = 'ops@contoso.com';
const BODY_MARKER = 'PAYROLL-SCAN-CONFIDENTIAL-4711';
const NOT_FOUND = '550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup';

function scan(extraHeaders = ''): string {
  return `From: scanner@contoso.com\r\nTo: nobody@contoso.com\r\nSubject: Scan 4711\r\nMessage-ID: <scan-4711@scanner.contoso.com>\r\n${extraHeaders}\r\n${BODY_MARKER}\r\n`;
}

describe('failure notices end to end (fake Exchange Online)', () => {
  let rig: ExchangeOnlineRig;
  let agent: TestAgent | undefined;

  before(async () => {
    rig = await startExchangeOnlineRig();
  });
  afterEach(async () => {
    await agent?.dispose();
    agent = undefined;
  });
  after(async () => {
    await rig.close();
  });

  async function start(notices: Record<string, unknown>): Promise<TestAgent> {
    agent = await startTestAgent({ upstream: rig.upstream(), retry: { schedule: ['1h'] }, notices });
    return agent;
  }

  /** Sends a message the upstream refuses for good, and waits until it is given up. */
  async function giveUp(relay: TestAgent, from: string, raw = scan()): Promise<string> {
    rig.exo.failNext('rcpt', NOT_FOUND);
    const reply = await sendRaw(relay.address.port, from, ['nobody@contoso.com'], raw);
    const id = /queued as (\S+)$/.exec(reply)?.[1] ?? '';
    const attempt = await waitForAttempt(relay, (r) => r.id === id);
    assert.equal(attempt.action, 'failed', `${from}: ${attempt.reply}`);
    return id;
  }

  const noticesSince = (before: number) => rig.exo.messages.slice(before).filter((m) => m.mailFrom === '');

  it('a refused scan gets an RFC 3464 report to its sender and the admin, with envelope sender <>, recorded in its history', async () => {
    const relay = await start({ admin: ADMIN, notify: 'both' });
    const before = rig.exo.messages.length;
    const id = await giveUp(relay, 'scanner@contoso.com');
    await pollUntil(() => noticesSince(before).length === 2, 10_000, 'two notices');
    const notices = noticesSince(before);
    assert.deepEqual(notices.map((n) => n.rcptTo).sort(), [['ops@contoso.com'], ['scanner@contoso.com']]);
    for (const notice of notices) {
      assert.equal(notice.auth.user ?? RELAY_MAILBOX, RELAY_MAILBOX);
      const raw = notice.raw.toString('utf8');
      assert.doesNotMatch(raw, new RegExp(BODY_MARKER), 'never the body');
      const parsed = await simpleParser(notice.raw);
      assert.equal(parsed.subject, 'Undeliverable: Scan 4711');
      assert.equal(parsed.headers.get('auto-submitted'), 'auto-replied');
      assert.equal(parsed.from?.value[0]?.address, RELAY_MAILBOX, 'From is the mailbox (Exchange refuses another with 5.7.60)');
      assert.match(parsed.text ?? '', /nobody@contoso\.com/);
      assert.match(parsed.text ?? '', /RecipientNotFound/);
      assert.match(parsed.text ?? '', new RegExp(`smarthost resend ${id}`));
      // The report's three parts, in RFC 3464's order (mailparser folds message/delivery-status into its text).
      const contentType = parsed.headers.get('content-type') as { value: string; params: Record<string, string> };
      assert.equal(contentType.value, 'multipart/report');
      assert.equal(contentType.params['report-type'], 'delivery-status');
      const parts = raw.split(`--${contentType.params.boundary}`).slice(1, -1);
      assert.deepEqual(parts.map((p) => /Content-Type: ([^;\r\n]+)/i.exec(p)?.[1]), ['text/plain', 'message/delivery-status', 'text/rfc822-headers']);
      const fields = parts[1] ?? '';
      const headers = parsed.attachments.find((a) => a.contentType === 'text/rfc822-headers');
      assert.ok(headers, 'a text/rfc822-headers part');
      assert.match(headers.content.toString('utf8'), /^Subject: Scan 4711\r?$/m);
      assert.doesNotMatch(headers.content.toString('utf8'), new RegExp(BODY_MARKER));
    }
    const history = await readFile(join(relay.config.spool.dir, 'failed', `${id}.history.jsonl`), 'utf8');
    const recorded = history.trim().split('\n').map((l) => JSON.parse(l) as { type: string; kind?: string; to?: string; sent?: boolean }).filter((e) => e.type === 'notice');
    assert.deepEqual(recorded.map((e) => [e.kind, e.to, e.sent]).sort(), [['undeliverable', 'ops@contoso.com', true], ['undeliverable', 'scanner@contoso.com', true]]);
    assert.doesNotMatch(relay.logs.text, new RegExp(BODY_MARKER));
  });

  it('a scan held for the operator past notices.heldAfter gets one "Delayed" report (Action: delayed, class 4, the fix), and the message stays queued', async () => {
    const relay = await start({ admin: ADMIN, notify: 'both', heldAfter: '1s' });
    const before = rig.exo.messages.length;
    rig.exo.failNext('mail', '550 5.7.60 SMTP; Client does not have permissions to send as this sender');
    const reply = await sendRaw(relay.address.port, 'scanner@contoso.com', ['nobody@contoso.com'], scan());
    const id = /queued as (\S+)$/.exec(reply)?.[1] ?? '';
    const attempt = await waitForAttempt(relay, (r) => r.id === id);
    assert.equal(attempt.event.decision.action, 'hold', attempt.reply);
    await pollUntil(() => noticesSince(before).length === 2, 10_000, 'two delayed notices');
    const notices = noticesSince(before);
    assert.deepEqual(notices.map((n) => n.rcptTo).sort(), [['ops@contoso.com'], ['scanner@contoso.com']]);
    for (const notice of notices) {
      const raw = notice.raw.toString('utf8');
      assert.doesNotMatch(raw, new RegExp(BODY_MARKER), 'never the body');
      const parsed = await simpleParser(notice.raw);
      assert.equal(parsed.subject, 'Delayed: Scan 4711');
      assert.equal(parsed.from?.value[0]?.address, RELAY_MAILBOX);
      assert.match(parsed.text ?? '', /held until the problem below is fixed/);
      assert.match(parsed.text ?? '', /Add-RecipientPermission/, 'the fix the admin must make');
      const contentType = parsed.headers.get('content-type') as { value: string; params: Record<string, string> };
      const fields = raw.split(`--${contentType.params.boundary}`)[2] ?? '';
      assert.match(fields, /^Final-Recipient: rfc822; nobody@contoso\.com\r$/m);
      assert.match(fields, /^Action: delayed\r$/m);
      assert.match(fields, /^Status: 4\.7\.60\r$/m, 'a delayed recipient is reported in class 4');
    }
    const history = await readFile(join(relay.config.spool.dir, 'queue', `${id}.history.jsonl`), 'utf8');
    const recorded = history.trim().split('\n').map((l) => JSON.parse(l) as { type: string; kind?: string; to?: string; sent?: boolean }).filter((e) => e.type === 'notice');
    assert.deepEqual(recorded.map((e) => [e.kind, e.to, e.sent]).sort(), [['delayed', 'ops@contoso.com', true], ['delayed', 'scanner@contoso.com', true]]);
    // A second look (a restart, the next held attempt) finds them in the history.
    await relay.notices?.notifyDelayed(id);
    await sleep(200);
    assert.equal(noticesSince(before).length, 2);
  });

  it('at most one per message: a later look (a restart) finds the notice in the history and sends none', async () => {
    const relay = await start({ admin: ADMIN });
    const before = rig.exo.messages.length;
    const id = await giveUp(relay, 'scanner@contoso.com');
    await pollUntil(() => noticesSince(before).length === 1, 10_000, 'the admin notice');
    assert.deepEqual(noticesSince(before)[0]?.rcptTo, [ADMIN], 'notify defaults to admin when notices.admin is set');
    await relay.notices?.notify(id);
    await sleep(200);
    assert.equal(noticesSince(before).length, 1);
  });

  it('no notice for a message from <> or one a program generated, and none to a made-up sender domain', async () => {
    // The MFP's own made-up domain goes out through send-as, as such devices are set up.
    agent = await startTestAgent({ upstream: rig.upstream(), retry: { schedule: ['1h'] }, notices: { admin: ADMIN, notify: 'sender', undeliverableDomains: ['scanner.local'] }, clients: [{ name: 'lan', address: '127.0.0.1', sendAs: 'scanner@contoso.com' }] });
    const relay = agent;
    const before = rig.exo.messages.length;
    await giveUp(relay, '');
    await giveUp(relay, 'scanner@contoso.com', scan('Auto-Submitted: auto-replied\r\n'));
    await giveUp(relay, 'scanner@contoso.com', scan('Content-Type: multipart/report; report-type=delivery-status; boundary=x\r\n'));
    await giveUp(relay, 'mfp@scanner.local');
    await sleep(300);
    assert.deepEqual(noticesSince(before), []);
    assert.match(relay.logs.text, /the sender is <>/);
    assert.match(relay.logs.text, /Auto-Submitted: auto-replied/);
    assert.match(relay.logs.text, /itself a report/);
    assert.match(relay.logs.text, /scanner\.local is in notices\.undeliverableDomains/);
  });

  it('a device set to none gets no notice while others do', async () => {
    agent = await startTestAgent({ upstream: rig.upstream(), retry: { schedule: ['1h'] }, notices: { admin: ADMIN }, clients: [{ name: 'lan', address: '127.0.0.1', notices: 'none' }] });
    const before = rig.exo.messages.length;
    await giveUp(agent, 'scanner@contoso.com');
    await sleep(300);
    assert.deepEqual(noticesSince(before), []);
    assert.match(agent.logs.text, /notices are off for this device/);
  });
});
