import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { describe, it } from 'node:test';
import type { DeliveryEvent } from '../../delivery/history/deliveryEvent.ts';
import { silentLogger } from '../../delivery/logger.ts';
import { recipientStatus } from '../../delivery/notices/buildFailureNotice.ts';
import type { Submitter } from '../../delivery/smtp/submission.ts';
import { agentConfigSchema } from '../../edge-agent/config/agentConfigSchema.ts';
import { FailureNotices, NOTICES_PER_RECIPIENT_PER_HOUR } from '../../edge-agent/notices/failureNotices.ts';
import { noticeTargets } from '../../edge-agent/notices/noticeTargets.ts';
import type { DeliveryState, FailureRecord } from '../../edge-agent/spool/spool.ts';
import { pollUntil } from '../../testbed/helpers/pollUntil.ts';
import { scannerEnvelope } from '../../testbed/helpers/scannerEnvelope.ts';
import { setTimeout as sleep } from 'node:timers/promises';

const notices = (input: Record<string, unknown>) => agentConfigSchema.parse({ spool: { dir: '/tmp/x' }, notices: input }).notices;
const header = (extra = '') => Buffer.from(`Subject: scan\r\n${extra}\r\n`);
/** What the stubbed spool holds for every message; its envelope carries its size and digest. */
const SPOOLED_BODY = Buffer.from('Subject: scan\r\n\r\nbody\r\n');

describe('who gets a failure notice', () => {
  it('admin by default once notices.admin is set; nobody without it', () => {
    assert.deepEqual(noticeTargets({ notices: notices({ admin: 'ops@contoso.com' }), mailFrom: 'scanner@contoso.com', headerSection: header() }).to, ['ops@contoso.com']);
    assert.deepEqual(noticeTargets({ notices: notices({}), mailFrom: 'scanner@contoso.com', headerSection: header() }).to, []);
  });

  it('both: the sender and the admin, once each', () => {
    const cfg = notices({ admin: 'ops@contoso.com', notify: 'both' });
    assert.deepEqual(noticeTargets({ notices: cfg, mailFrom: 'scanner@contoso.com', headerSection: header() }).to, ['scanner@contoso.com', 'ops@contoso.com']);
    assert.deepEqual(noticeTargets({ notices: cfg, mailFrom: 'OPS@contoso.com', headerSection: header() }).to, ['OPS@contoso.com']);
  });

  it('a client setting wins over notices.notify', () => {
    const cfg = notices({ admin: 'ops@contoso.com', notify: 'both' });
    assert.deepEqual(noticeTargets({ notices: cfg, clientTarget: 'admin', mailFrom: 'scanner@contoso.com', headerSection: header() }).to, ['ops@contoso.com']);
    assert.deepEqual(noticeTargets({ notices: cfg, clientTarget: 'none', mailFrom: 'scanner@contoso.com', headerSection: header() }).to, []);
  });

  it('never for <>, an Auto-Submitted original or a report; Auto-Submitted: no still gets one', () => {
    const cfg = notices({ admin: 'ops@contoso.com', notify: 'both' });
    assert.match(noticeTargets({ notices: cfg, mailFrom: '', headerSection: header() }).suppressed.join(), /<>/);
    assert.deepEqual(noticeTargets({ notices: cfg, mailFrom: 'a@contoso.com', headerSection: header('Auto-Submitted: auto-generated\r\n') }).to, []);
    assert.deepEqual(noticeTargets({ notices: cfg, mailFrom: 'a@contoso.com', headerSection: header('Content-Type: multipart/report; report-type=disposition-notification\r\n') }).to, []);
    assert.deepEqual(noticeTargets({ notices: cfg, mailFrom: 'a@contoso.com', headerSection: header('Auto-Submitted: no\r\n') }).to, ['a@contoso.com', 'ops@contoso.com']);
  });

  it('the sender only when its domain receives mail', () => {
    const cfg = notices({ notify: 'sender', undeliverableDomains: ['Scanner.Local'] });
    const out = noticeTargets({ notices: cfg, mailFrom: 'mfp@scanner.local', headerSection: header() });
    assert.deepEqual(out.to, []);
    assert.match(out.suppressed.join(), /undeliverableDomains/);
    assert.deepEqual(noticeTargets({ notices: cfg, mailFrom: 'mfp', headerSection: header() }).to, []);
  });

  it('config errors name the key', () => {
    assert.throws(() => agentConfigSchema.parse({ spool: { dir: '/tmp/x' }, notices: { notify: 'admin' } }), /notices\.admin|admin/);
    assert.throws(() => agentConfigSchema.parse({ spool: { dir: '/tmp/x' }, notices: { notify: 'everyone' } }), /expected one of sender, admin, both, none/);
    assert.throws(() => agentConfigSchema.parse({ spool: { dir: '/tmp/x' }, notices: { undeliverableDomains: ['not a domain'] } }), /expected a domain/);
  });
});

describe('the notice status per recipient (RFC 3463)', () => {
  it('keeps the reply code; a temporary last reply given up is 4.4.7; a delayed one is class 4', () => {
    assert.equal(recipientStatus('undeliverable', '550 5.1.10 RESOLVER.ADR.RecipientNotFound'), '5.1.10');
    assert.equal(recipientStatus('undeliverable', '451 try later'), '4.4.7');
    assert.equal(recipientStatus('undeliverable', undefined), '5.0.0');
    assert.equal(recipientStatus('delayed', '550 5.7.60 SendAs denied'), '4.7.60');
  });
});

describe('the rate limit per notice recipient', () => {
  it(`sends ${NOTICES_PER_RECIPIENT_PER_HOUR} an hour to one address and records the rest as not sent`, async () => {
    const sent: string[] = [];
    const events: DeliveryEvent[] = [];
    const submitter: Submitter = {
      async submit(message) {
        for await (const chunk of message.raw) void chunk;
        assert.equal(message.from, '', 'envelope sender <>');
        sent.push(message.to.join());
        return { accepted: message.to, rejected: [] };
      },
      close: async () => undefined,
    };
    const envelope = (id: string) => scannerEnvelope(id, SPOOLED_BODY, { receivedAt: '2026-12-04T11:00:00.000Z', rcptTo: ['x@contoso.com'] });
    const failure: FailureRecord = { failedAt: '2026-12-04T11:00:01.000Z', reason: 'refused', reply: '550 5.1.10 nope', state: { attempts: 1, deliveredRcpts: [], rejectedRcpts: [{ rcpt: 'x@contoso.com', reply: '550 5.1.10 nope' }] } };
    let now = Date.parse('2026-12-04T12:00:00.000Z');
    const notifier = new FailureNotices({
      config: { notices: notices({ admin: 'ops@contoso.com' }), clients: [] },
      spool: {
        readFailure: async () => failure,
        readState: async () => undefined,
        findMessage: async (id: string) => ({ envelope: envelope(id), where: 'failed' as const, body: Readable.from([SPOOLED_BODY]) }),
      },
      history: { read: async (id: string) => events.filter((e) => e.messageId === id), appendBeside: async (e: DeliveryEvent) => void events.push(e) },
      mail: { submitter, from: async () => 'relay@contoso.com' },
      logger: silentLogger,
      now: () => now,
    });
    for (let i = 0; i < NOTICES_PER_RECIPIENT_PER_HOUR + 2; i++) await notifier.notify(`msg${String(i).padStart(9, '0')}`);
    assert.equal(sent.length, NOTICES_PER_RECIPIENT_PER_HOUR);
    const notSent = events.filter((e) => e.type === 'notice' && !e.sent);
    assert.equal(notSent.length, 2);
    // An hour (and the bucket's minute) later the address gets notices again.
    now += 3_600_000 + 60_000;
    await notifier.notify('msglater0001');
    assert.equal(sent.length, NOTICES_PER_RECIPIENT_PER_HOUR + 1);
    // The same message again: the history says one went.
    await notifier.notify('msglater0001');
    assert.equal(sent.length, NOTICES_PER_RECIPIENT_PER_HOUR + 1);
  });
});

describe('the "Delayed" notice of a held message', () => {
  const HELD_REPLY = '550 5.7.60 SMTP; Client does not have permissions to send as this sender';
  const FIX = 'Add-RecipientPermission -Identity scanner@contoso.com -Trustee relay@contoso.com -AccessRights SendAs';
  /** An id as the spool makes them: arrival time in base 36, then a dash. */
  const idArrivedAgo = (ms: number, tag: string) => `${(Date.now() - ms).toString(36).padStart(9, '0')}-${tag}`;

  function rig(heldAfter: string, state: () => DeliveryState | undefined) {
    const sent: string[] = [];
    const events: DeliveryEvent[] = [];
    const submitter: Submitter = {
      async submit(message) {
        let raw = '';
        for await (const chunk of message.raw) raw += String(chunk);
        assert.match(raw, /^Action: delayed\r$/m);
        sent.push(message.to.join());
        return { accepted: message.to, rejected: [] };
      },
      close: async () => undefined,
    };
    const envelope = (id: string) => scannerEnvelope(id, SPOOLED_BODY, { rcptTo: ['x@contoso.com'] });
    const notifier = new FailureNotices({
      config: { notices: notices({ admin: 'ops@contoso.com', heldAfter }), clients: [] },
      spool: {
        readFailure: async () => undefined,
        readState: async () => state(),
        findMessage: async (id: string) => ({ envelope: envelope(id), where: 'queue' as const, body: Readable.from([SPOOLED_BODY]) }),
      },
      history: { read: async (id: string) => events.filter((e) => e.messageId === id), appendBeside: async (e: DeliveryEvent) => void events.push(e) },
      mail: { submitter, from: async () => 'relay@contoso.com' },
      logger: silentLogger,
    });
    return { sent, events, notifier };
  }
  const held = (): DeliveryState => ({ attempts: 1, lastError: HELD_REPLY, operatorAction: FIX, deliveredRcpts: [], rejectedRcpts: [] });

  it('goes out for a message found held at start once it is older than heldAfter, once', async () => {
    const { sent, events, notifier } = rig('4h', held);
    await notifier.seedHeld([idArrivedAgo(5 * 3_600_000, 'old'), idArrivedAgo(60_000, 'young')]);
    await pollUntil(() => sent.length === 1, 5000, 'the old one notified');
    await sleep(100);
    assert.deepEqual(sent, ['ops@contoso.com'], 'the young one is not due yet');
    assert.deepEqual(events.map((e) => e.type === 'notice' && [e.kind, e.sent]), [['delayed', true]]);
    await notifier.notifyDelayed(events[0]!.messageId);
    assert.equal(sent.length, 1, 'the history says one went');
    await notifier.stop();
  });

  it('none once it is no longer held, and none at all with heldAfter: off', async () => {
    const released = rig('4h', () => ({ ...held(), operatorAction: undefined }));
    await released.notifier.notifyDelayed(idArrivedAgo(5 * 3_600_000, 'released'));
    assert.deepEqual(released.sent, []);
    const off = rig('off', held);
    await off.notifier.seedHeld([idArrivedAgo(5 * 3_600_000, 'old')]);
    await sleep(100);
    assert.deepEqual(off.sent, []);
    assert.throws(() => agentConfigSchema.parse({ spool: { dir: '/tmp/x' }, notices: { heldAfter: 'soon' } }), /notices\.heldAfter|heldAfter/);
  });
});
