import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { after, afterEach, before, beforeEach, describe, it } from 'node:test';
import type { AlertSnapshot } from '../../edge-agent/alerts/alertConditions.ts';
import { AlertMonitor, alertStatePath } from '../../edge-agent/alerts/alertMonitor.ts';
import type { AlertState } from '../../edge-agent/alerts/alertStateFile.ts';
import { SubmitError, type Submitter, type SubmitResult } from '../../delivery/smtp/submission.ts';
import { alertsSchema, type AlertsConfig } from '../../edge-agent/config/alertsSchema.ts';
import { createLogger } from '../../edge-agent/logger.ts';
import { LogCapture } from '../../testbed/helpers/agentHarness.ts';
import { WebhookReceiver } from './webhookReceiver.ts';

const SECRET_PATH = 'webhookb2/0000-tenant/IncomingWebhook/s3cr3t-webhook-key';

/** A snapshot the test sets by hand. */
class FixedSignals {
  snapshotValue: AlertSnapshot = { held: { count: 0 }, failedInARow: 0 };
  streaks: AlertState['streaks'] = { failedInARow: 0 };
  async snapshot(): Promise<AlertSnapshot> {
    return this.snapshotValue;
  }
  restoreStreaks(streaks: AlertState['streaks']): void {
    this.streaks = streaks;
  }
  get currentStreaks(): AlertState['streaks'] {
    return this.streaks;
  }
}

/** The upstream as the alert mail sees it: captures, or refuses while `down`. */
class CapturingSubmitter implements Submitter {
  readonly mails: { from: string; to: string[]; raw: string }[] = [];
  down = false;
  async submit(message: { id: string; from: string; to: string[]; raw: Readable }): Promise<SubmitResult> {
    const chunks: Buffer[] = [];
    for await (const chunk of message.raw) chunks.push(chunk as Buffer);
    if (this.down) throw new SubmitError({ message: 'connect ECONNREFUSED 127.0.0.1:587', code: 'ECONNECTION' });
    this.mails.push({ from: message.from, to: message.to, raw: Buffer.concat(chunks).toString('utf8') });
    return { accepted: message.to, rejected: [] };
  }
  async close(): Promise<void> {}
}

const HELD: AlertSnapshot = { held: { count: 1, reply: '550 5.7.60 SMTP; Client does not have permissions to send as this sender', fix: 'Add-RecipientPermission -Identity scanner@contoso.com -Trustee relay@contoso.com -AccessRights SendAs' }, failedInARow: 1 };
const NOW = Date.parse('2026-12-04T12:00:00Z');

describe('alert monitor', () => {
  const receiver = new WebhookReceiver();
  let dir: string;
  let logs: LogCapture;
  let signals: FixedSignals;
  let submitter: CapturingSubmitter;
  let clock: number;

  before(async () => {
    await receiver.start();
  });
  after(async () => {
    await receiver.close();
  });
  beforeEach(async () => {
    receiver.posts.length = 0;
    receiver.status = 200;
    dir = await mkdtemp(join(tmpdir(), 'smarthost-alerts-'));
    logs = new LogCapture();
    signals = new FixedSignals();
    submitter = new CapturingSubmitter();
    clock = NOW;
  });

  function config(overrides: Record<string, unknown> = {}): AlertsConfig {
    return alertsSchema.parse({ email: 'admin@contoso.com', webhooks: [{ url: receiver.url(SECRET_PATH), format: 'json' }], ...overrides });
  }

  async function monitor(alerts: AlertsConfig = config()): Promise<AlertMonitor> {
    const m = new AlertMonitor({
      config: alerts,
      signals,
      logger: createLogger('debug', logs),
      statePath: alertStatePath(dir),
      origin: { hostname: 'relay-office1' },
      mail: { submitter, from: async () => 'relay@contoso.com' },
      now: () => clock,
    });
    await m.start();
    return m;
  }

  it('sends one alert for a condition seen at two evaluations, then one recovery notice when it clears', async (t) => {
    const m = await monitor();
    t.after(() => m.stop());
    signals.snapshotValue = HELD;
    await m.evaluate();
    await m.evaluate();
    assert.equal(receiver.posts.length, 1);
    assert.equal(submitter.mails.length, 1);
    const raised = receiver.posts[0]?.body as Record<string, unknown>;
    assert.equal(raised.kind, 'raised');
    assert.equal(raised.condition, 'held-for-operator');
    assert.equal(raised.host, 'relay-office1');
    assert.match(String(raised.fix), /Add-RecipientPermission/);
    assert.equal(receiver.posts[0]?.contentType, 'application/json');

    signals.snapshotValue = { held: { count: 0 }, failedInARow: 0 };
    clock += 60_000;
    await m.evaluate();
    await m.evaluate();
    assert.equal(receiver.posts.length, 2);
    const cleared = receiver.posts[1]?.body as Record<string, unknown>;
    assert.equal(cleared.kind, 'cleared');
    assert.equal(cleared.since, new Date(NOW).toISOString());
    assert.equal(submitter.mails.length, 2);
    assert.deepEqual(m.active, []);
  });

  it('mails the admin From the upstream mailbox, marked Auto-Submitted', async (t) => {
    const m = await monitor();
    t.after(() => m.stop());
    signals.snapshotValue = HELD;
    await m.evaluate();
    const mail = submitter.mails[0];
    assert.ok(mail);
    assert.equal(mail.from, 'relay@contoso.com');
    assert.deepEqual(mail.to, ['admin@contoso.com']);
    assert.match(mail.raw, /^From: relay@contoso\.com\r\n/m);
    assert.match(mail.raw, /^To: admin@contoso\.com\r\n/m);
    assert.match(mail.raw, /^Auto-Submitted: auto-generated\r\n/m);
    assert.match(mail.raw, /^Subject: \[smarthost relay-office1\] ALERT: Mail is held for the operator\r\n/m);
    assert.match(mail.raw, /What to do: Add-RecipientPermission/);
  });

  it('shapes a Teams card and a Slack message', async (t) => {
    const m = await monitor(
      config({
        email: false,
        webhooks: [
          { url: receiver.url('teams/key1'), format: 'teams' },
          { url: receiver.url('slack/key2'), format: 'slack' },
        ],
      }),
    );
    t.after(() => m.stop());
    signals.snapshotValue = HELD;
    await m.evaluate();
    const teams = receiver.posts.find((p) => p.path === '/teams/key1')?.body as { type: string; attachments: { contentType: string; content: { type: string; version: string; body: { type: string; text?: string }[] } }[] };
    assert.equal(teams.type, 'message');
    assert.equal(teams.attachments.length, 1);
    assert.equal(teams.attachments[0]?.contentType, 'application/vnd.microsoft.card.adaptive');
    assert.equal(teams.attachments[0]?.content.type, 'AdaptiveCard');
    assert.match(teams.attachments[0]?.content.body[0]?.text ?? '', /ALERT: Mail is held for the operator/);
    assert.ok(teams.attachments[0]?.content.body.some((b) => b.type === 'FactSet'));

    const slack = receiver.posts.find((p) => p.path === '/slack/key2')?.body as { text: string; blocks: { type: string; text?: { type: string; text: string } }[] };
    assert.match(slack.text, /ALERT: Mail is held for the operator/);
    assert.equal(slack.blocks[0]?.type, 'header');
    assert.equal(slack.blocks[0]?.text?.type, 'plain_text');
    assert.ok(slack.blocks.some((b) => b.type === 'section' && /5\.7\.60/.test(b.text?.text ?? '')));
  });

  it('retries a failed webhook at the next evaluation and never logs its secret path', async (t) => {
    const m = await monitor(config({ email: false }));
    t.after(() => m.stop());
    signals.snapshotValue = HELD;
    receiver.status = 500;
    await m.evaluate();
    assert.equal(receiver.posts.length, 0);
    assert.equal(m.pending.length, 1);
    assert.match(logs.text, /could not send an alert by webhook/);
    assert.match(logs.text, /HTTP 500/);
    receiver.status = 200;
    await m.evaluate();
    assert.equal(receiver.posts.length, 1);
    assert.equal(m.pending.length, 0);
    assert.doesNotMatch(logs.text, /s3cr3t-webhook-key|IncomingWebhook/);
    assert.doesNotMatch(await readFile(alertStatePath(dir), 'utf8'), /s3cr3t-webhook-key/);
  });

  it('gives up on a webhook that does not answer within webhookTimeout and keeps the notice', async (t) => {
    const m = await monitor(config({ email: false, webhookTimeout: '200ms' }));
    t.after(() => m.stop());
    signals.snapshotValue = HELD;
    receiver.hang = true;
    await m.evaluate();
    receiver.hang = false;
    assert.equal(m.pending.length, 1);
    assert.match(logs.text, /no answer within 200 ms/);
  });

  it('logs a webhook that cannot be reached by its masked address and keeps the notice', async (t) => {
    // A port nobody listens on: the connection is refused at once.
    const m = await monitor(config({ email: false, webhooks: [{ url: 'http://127.0.0.1:9/hooks/T000/B000/secret-token-xyz', format: 'slack' }], webhookTimeout: '2s' }));
    t.after(() => m.stop());
    signals.snapshotValue = HELD;
    await m.evaluate();
    assert.equal(m.pending.length, 1);
    assert.match(logs.text, /webhook http:\/\/127\.0\.0\.1:9\/\*{8}/);
    assert.doesNotMatch(logs.text, /secret-token-xyz/);
  });

  it('neither raises again nor forgets after a restart', async () => {
    let m = await monitor();
    signals.snapshotValue = HELD;
    await m.evaluate();
    await m.stop();
    assert.equal(receiver.posts.length, 1);
    const saved = JSON.parse(await readFile(alertStatePath(dir), 'utf8')) as AlertState;
    assert.deepEqual(Object.keys(saved.active), ['held-for-operator']);

    m = await monitor();
    await m.evaluate();
    assert.equal(receiver.posts.length, 1, 'no second alert after the restart');
    signals.snapshotValue = { held: { count: 0 }, failedInARow: 0 };
    await m.evaluate();
    await m.stop();
    assert.equal(receiver.posts.length, 2);
    assert.equal((receiver.posts[1]?.body as { kind: string }).kind, 'cleared', 'the restarted monitor still knew what was raised');
  });

  it('sends by webhook while the upstream is broken and mails on recovery saying the alert could not be mailed meanwhile', async (t) => {
    const m = await monitor();
    t.after(() => m.stop());
    submitter.down = true;
    signals.snapshotValue = { held: { count: 0 }, failedInARow: 0, unreachableSince: NOW - 20 * 60_000, unreachableError: 'connect ECONNREFUSED' };
    await m.evaluate();
    clock += 60_000;
    await m.evaluate();
    assert.equal(receiver.posts.length, 1, 'the webhook had it at once');
    assert.equal((receiver.posts[0]?.body as { condition: string }).condition, 'upstream-unreachable');
    assert.equal(submitter.mails.length, 0);
    assert.equal(m.pending.length, 1, 'the mail is still owed');

    submitter.down = false;
    signals.snapshotValue = { held: { count: 0 }, failedInARow: 0 };
    clock += 60_000;
    await m.evaluate();
    assert.equal(receiver.posts.length, 2);
    assert.equal(submitter.mails.length, 2, 'the alert and its recovery');
    const [alert, recovery] = submitter.mails;
    assert.match(alert?.raw ?? '', /ALERT: Microsoft 365 cannot be reached/);
    assert.match(alert?.raw ?? '', /This alert could not be mailed while microsoft 365 cannot be reached \(from 2026-12-04T12:00:00\.000Z to 2026-12-04T12:02:00\.000Z\)/);
    assert.match(recovery?.raw ?? '', /RECOVERED: Microsoft 365 cannot be reached/);
    assert.equal(m.pending.length, 0);
  });

  it('keeps the mail when the upstream refuses it for another reason, and says so when it goes', async (t) => {
    const m = await monitor(config({ webhooks: [] }));
    t.after(() => m.stop());
    submitter.down = true;
    signals.snapshotValue = HELD;
    await m.evaluate();
    assert.equal(m.pending.length, 1);
    submitter.down = false;
    await m.evaluate();
    assert.equal(submitter.mails.length, 1);
    assert.match(submitter.mails[0]?.raw ?? '', /could not be mailed while the upstream refused it \(connect ECONNREFUSED/);
  });

  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });
});
