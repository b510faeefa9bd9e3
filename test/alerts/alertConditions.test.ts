import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { evaluateConditions, type AlertSnapshot } from '../../edge-agent/alerts/alertConditions.ts';
import { alertsSchema } from '../../edge-agent/config/alertsSchema.ts';

const thresholds = alertsSchema.parse({}).thresholds;
const NOW = Date.parse('2026-12-04T12:00:00Z');
const MINUTE = 60_000;
const DAY = 86_400_000;

function quiet(overrides: Partial<AlertSnapshot> = {}): AlertSnapshot {
  return { held: { count: 0 }, failedInARow: 0, ...overrides };
}

function ids(snapshot: AlertSnapshot, now = NOW): string[] {
  return evaluateConditions(snapshot, thresholds, now).map((c) => c.id);
}

describe('alert conditions', () => {
  it('raise nothing for a relay that works', () => {
    assert.deepEqual(ids(quiet({ oldestQueuedAt: NOW - MINUTE, failedInARow: 1, spoolFill: { percent: 10, of: 'disk' } })), []);
  });

  it('raise held-for-operator with the reply and the fix while a message is held', () => {
    const [held] = evaluateConditions(quiet({ held: { count: 2, reply: '550 5.7.60 SMTP; Client does not have permissions', fix: 'Add-RecipientPermission ...' } }), thresholds, NOW);
    assert.equal(held?.id, 'held-for-operator');
    assert.match(held.detail, /^2 queued message\(s\).*5\.7\.60/);
    assert.equal(held.fix, 'Add-RecipientPermission ...');
    assert.equal(held.upstreamBroken, false);
  });

  it('raise oldest-message once the oldest queued message passes the threshold, not before', () => {
    assert.deepEqual(ids(quiet({ oldestQueuedAt: NOW - thresholds.oldestMessageAge + 1 })), []);
    assert.deepEqual(ids(quiet({ oldestQueuedAt: NOW - thresholds.oldestMessageAge })), ['oldest-message']);
  });

  it('raise failed-attempts at N failed attempts in a row', () => {
    assert.deepEqual(ids(quiet({ failedInARow: thresholds.failedAttempts - 1 })), []);
    const [raised] = evaluateConditions(quiet({ failedInARow: thresholds.failedAttempts, lastFailure: '451 4.7.500 Server busy' }), thresholds, NOW);
    assert.equal(raised?.id, 'failed-attempts');
    assert.match(raised.detail, /last 5 delivery attempts.*451 4\.7\.500/);
  });

  it('raise upstream-unreachable after the threshold, marked as the upstream being broken', () => {
    assert.deepEqual(ids(quiet({ unreachableSince: NOW - thresholds.upstreamUnreachable + 1 })), []);
    const [raised] = evaluateConditions(quiet({ unreachableSince: NOW - thresholds.upstreamUnreachable, unreachableError: 'connect ECONNREFUSED' }), thresholds, NOW);
    assert.equal(raised?.id, 'upstream-unreachable');
    assert.equal(raised.upstreamBroken, true);
    assert.match(raised.detail, /ECONNREFUSED/);
  });

  it('raise token-expiry when renewal failed and the token expires within the threshold, not while it has long left', () => {
    const failed = { renewalFailedAt: NOW - MINUTE, error: 'AADSTS7000222: the client secret keys are expired' };
    assert.deepEqual(ids(quiet({ token: { ...failed, expiresAt: NOW + thresholds.tokenExpiry + MINUTE } })), []);
    assert.deepEqual(ids(quiet({ token: { expiresAt: NOW + MINUTE } })), [], 'a token near expiry that renews fine is not an alert');
    const [raised] = evaluateConditions(quiet({ token: { ...failed, expiresAt: NOW + MINUTE } }), thresholds, NOW);
    assert.equal(raised?.id, 'token-expiry');
    assert.equal(raised.upstreamBroken, true);
    assert.match(raised.detail, /AADSTS7000222/);
    assert.deepEqual(ids(quiet({ token: failed })), ['token-expiry'], 'no token ever obtained');
  });

  it('raise certificate-expiry 30 days ahead by default', () => {
    assert.equal(thresholds.certificateExpiry, 30 * DAY);
    assert.deepEqual(ids(quiet({ certificateNotAfter: NOW + 31 * DAY })), []);
    const [raised] = evaluateConditions(quiet({ certificateNotAfter: NOW + 29 * DAY }), thresholds, NOW);
    assert.equal(raised?.id, 'certificate-expiry');
    assert.equal(raised.upstreamBroken, false, 'still valid: mail still goes');
    assert.equal(evaluateConditions(quiet({ certificateNotAfter: NOW - DAY }), thresholds, NOW)[0]?.upstreamBroken, true);
  });

  it('raise spool-fill at the configured percent of spool.maxBytes or of the disk', () => {
    assert.deepEqual(ids(quiet({ spoolFill: { percent: 79.9, of: 'spool.maxBytes' } })), []);
    const [raised] = evaluateConditions(quiet({ spoolFill: { percent: 80, of: 'disk' } }), thresholds, NOW);
    assert.equal(raised?.id, 'spool-fill');
    assert.match(raised.detail, /80% of its disk/);
  });

  it('follow the configured thresholds', () => {
    const strict = alertsSchema.parse({ thresholds: { failedAttempts: 1, oldestMessageAge: '5m' } }).thresholds;
    assert.deepEqual(
      evaluateConditions(quiet({ failedInARow: 1, oldestQueuedAt: NOW - 5 * MINUTE }), strict, NOW).map((c) => c.id),
      ['oldest-message', 'failed-attempts'],
    );
  });
});

describe('alerts config', () => {
  it('has defaults for every threshold and no channel', () => {
    const config = alertsSchema.parse({});
    assert.equal(config.email, false);
    assert.deepEqual(config.webhooks, []);
    assert.equal(config.interval, MINUTE);
    assert.deepEqual(Object.keys(config.thresholds).sort(), ['certificateExpiry', 'failedAttempts', 'oldestMessageAge', 'spoolFillPercent', 'tokenExpiry', 'upstreamUnreachable']);
  });

  it('masks webhook addresses where the configuration is printed (check-config)', async () => {
    const { agentConfigSchema } = await import('../../edge-agent/config/agentConfigSchema.ts');
    const { maskSecrets } = await import('../../edge-agent/config/maskSecrets.ts');
    const config = agentConfigSchema.parse({ alerts: { webhooks: [{ url: 'https://contoso.webhook.office.com/webhookb2/g/IncomingWebhook/key123', format: 'teams' }] } });
    const printed = JSON.stringify(maskSecrets(config));
    assert.doesNotMatch(printed, /key123|IncomingWebhook/);
    assert.match(printed, /https:\/\/contoso\.webhook\.office\.com\/\*{8}/);
  });

  it('refuses alerts.email in cloud mode, naming the key: the office box has no upstream there', async () => {
    const { agentConfigSchema } = await import('../../edge-agent/config/agentConfigSchema.ts');
    const { startAlerts } = await import('../../edge-agent/alerts/startAlerts.ts');
    const { Spool } = await import('../../edge-agent/spool/spool.ts');
    const { createLogger } = await import('../../edge-agent/logger.ts');
    const config = agentConfigSchema.parse({
      queue: { kind: 'sqs', sqs: { queueUrl: 'https://sqs.eu-west-1.amazonaws.com/123456789012/smarthost-mail', bucket: 'b' } },
      alerts: { email: 'admin@contoso.com' },
    });
    assert.ok(config.alerts);
    await assert.rejects(
      startAlerts({ config, alerts: config.alerts, logger: createLogger('silent'), spool: new Spool({ dir: '/nonexistent-spool' }) }),
      (error: Error & { problems?: string[] }) => {
        assert.match(error.problems?.[0] ?? '', /^alerts\.email: in cloud mode/);
        return true;
      },
    );
  });

  it('names the key of each problem', async () => {
    const { loadConfigFromText } = await import('../../edge-agent/config/loadConfig.ts');
    assert.throws(
      () =>
        loadConfigFromText('alerts:\n  email: not-an-address\n  webhooks:\n    - url: ftp://x\n      format: discord\n  thresholds:\n    spoolFillPercent: 120\n  interval: soon\n', { baseDir: '/tmp' }),
      (error: Error & { problems?: string[] }) => {
        const problems = (error.problems ?? []).join('\n');
        for (const key of ['alerts.email', 'alerts.webhooks[0].url', 'alerts.webhooks[0].format', 'alerts.thresholds.spoolFillPercent', 'alerts.interval']) {
          assert.match(problems, new RegExp(`^${key.replace(/[[\].]/g, '\\$&')}: `, 'm'), `${key} named in:\n${problems}`);
        }
        return true;
      },
    );
  });
});
