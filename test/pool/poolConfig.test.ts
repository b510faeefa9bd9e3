import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { poolMembers } from '../../delivery/pool/poolMembers.ts';
import { maskUpstreamSecrets, parseUpstreamConfig, type UpstreamConfig } from '../../delivery/upstreamConfig.ts';

const app = { type: 'oauth2', tenantId: '11111111-2222-3333-4444-555555555555', clientId: 'aaaaaaaa-0000-0000-0000-000000000001', clientSecret: 's' };

function parsed(input: unknown): UpstreamConfig {
  const result = parseUpstreamConfig(input, ['upstream']);
  assert.ok(result.ok, result.ok ? '' : result.problems.join('\n'));
  return result.config;
}

function problems(input: unknown): string[] {
  const result = parseUpstreamConfig(input, ['upstream']);
  assert.ok(!result.ok, 'expected config problems');
  return result.problems;
}

describe('upstream.mailboxes: a pool of mailboxes', () => {
  test('each mailbox shares the app and authenticates as itself, with its own limits where given', () => {
    const upstream = parsed({
      host: 'smtp.office365.com',
      auth: app,
      rateLimit: { perMinute: 30 },
      mailboxes: [
        { mailbox: 'relay1@contoso.com', sendAs: ['Scanner@contoso.com'] },
        { mailbox: 'relay2@contoso.com', rateLimit: { recipientsPerDay: 5_000 } },
        { mailbox: 'hve@contoso.com', auth: { type: 'basic', password: 'p' } },
      ],
    });
    const members = poolMembers(upstream);
    assert.deepEqual(members.map((m) => m.mailbox), ['relay1@contoso.com', 'relay2@contoso.com', 'hve@contoso.com']);
    assert.deepEqual(members[0]?.sendAs, ['scanner@contoso.com']);
    assert.deepEqual(members.map((m) => m.upstream.auth.type !== 'none' && m.upstream.auth.user), ['relay1@contoso.com', 'relay2@contoso.com', 'hve@contoso.com']);
    assert.equal(members[0]?.upstream.auth.type === 'oauth2' && members[0].upstream.auth.clientSecret, 's');
    assert.deepEqual(members[1]?.upstream.rateLimit, { perMinute: 30, connections: 3, recipientsPerDay: 5_000, perRecipientPerHour: 3_600 });
    assert.equal(members[2]?.upstream.auth.type, 'basic');
    assert.ok(members.every((m) => !('mailboxes' in m.upstream)), 'a member is a complete upstream of its own');
  });

  test("a mailbox's own credentials are masked like the shared ones", () => {
    const upstream = parsed({ host: 'h', auth: { ...app, clientSecret: 'shared-secret-1' }, mailboxes: [{ mailbox: 'a@contoso.com' }, { mailbox: 'hve@contoso.com', auth: { type: 'basic', password: 'own-password-2' } }] });
    const text = JSON.stringify(maskUpstreamSecrets(upstream));
    assert.ok(!text.includes('shared-secret-1') && !text.includes('own-password-2'), text);
    assert.ok(text.includes('hve@contoso.com'));
  });

  test('the single-mailbox block is a pool of one', () => {
    const members = poolMembers(parsed({ host: 'smtp.office365.com', auth: { ...app, user: 'relay@contoso.com' } }));
    assert.equal(members.length, 1);
    assert.equal(members[0]?.mailbox, 'relay@contoso.com');
    assert.deepEqual(members[0]?.sendAs, []);
    assert.equal(members[0]?.upstream.rateLimit.recipientsPerDay, 10_000);
  });

  test('one sendAs address under two mailboxes is allowed: either may send it', () => {
    const members = poolMembers(parsed({ host: 'h', auth: app, mailboxes: [{ mailbox: 'a@contoso.com', sendAs: ['ups@contoso.com'] }, { mailbox: 'b@contoso.com', sendAs: ['ups@contoso.com'] }] }));
    assert.deepEqual(members.map((m) => m.sendAs), [['ups@contoso.com'], ['ups@contoso.com']]);
  });

  test('problems name the key', () => {
    assert.deepEqual(problems({ host: 'h', auth: app, mailboxes: [{ mailbox: 'a@contoso.com' }, { mailbox: 'b@contoso.com' }, { mailbox: 'A@contoso.com' }] }), [
      "upstream.mailboxes[2].mailbox: 'A@contoso.com' is listed twice (also mailboxes[0]); list each mailbox once",
    ]);
    assert.deepEqual(problems({ host: 'h', auth: { ...app, user: 'relay@contoso.com' }, mailboxes: [{ mailbox: 'a@contoso.com' }] }), [
      "upstream.auth.user: 'relay@contoso.com' is not one of upstream.mailboxes; leave it out with a pool (each mailbox authenticates as itself)",
    ]);
    assert.deepEqual(problems({ host: 'h', auth: app, mailboxes: [{ mailbox: 'a@contoso.com', auth: { ...app, user: 'b@contoso.com' } }] }), [
      "upstream.mailboxes[0].auth.user: must be the mailbox itself ('a@contoso.com'); leave it out",
    ]);
    assert.deepEqual(problems({ host: 'h', auth: app, mailboxes: [] }), ['upstream.auth.user: required when type is oauth2', 'upstream.mailboxes: must not be empty']);
    assert.deepEqual(problems({ host: 'h', auth: app, mailboxes: [{ mailbox: 'not an address', sendAs: ['x'], rateLimit: { perMinute: 0 }, extra: 1 }] }), [
      // No usable first mailbox to take the user from.
      'upstream.auth.user: required when type is oauth2',
      "upstream.mailboxes[0].mailbox: expected an email address, got 'not an address'",
      "upstream.mailboxes[0].sendAs[0]: expected an email address, got 'x'",
      'upstream.mailboxes[0].rateLimit.perMinute: must be at least 1',
      'upstream.mailboxes[0].extra: unknown key',
    ]);
    assert.deepEqual(problems({ host: 'h', auth: { type: 'basic', password: 'p' }, mailboxes: [{ mailbox: 'a@contoso.com', route: 'graph' }] }), [
      'upstream.mailboxes[0].auth: route graph on one mailbox needs its own oauth2 auth (the Graph scope differs from the SMTP one)',
      'upstream.mailboxes[0].route: route graph needs oauth2 (an app with the Mail.Send application permission)',
    ]);
    assert.deepEqual(problems({ host: 'h', auth: { type: 'oauth2', tenantId: 't', clientId: 'c', clientSecret: 's' } }), ['upstream.auth.user: required when type is oauth2']);
  });
});
