import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { RECIPIENT_BUDGET_WINDOW_MS } from '../../delivery/exchangeLimits.ts';
import { MailboxPool, type PoolLease, type PoolMemberInput } from '../../delivery/pool/mailboxPool.ts';
import { BUCKET_MS, RollingCount } from '../../delivery/pool/rollingCount.ts';
import type { Submitter } from '../../delivery/smtp/submission.ts';
import { BUDGET_SAVE_INTERVAL_MS, RECIPIENT_BUDGET_FILE, recipientBudgetFile } from '../../edge-agent/spool-delivery/recipientBudgetFile.ts';
import { pollUntil } from '../../testbed/helpers/pollUntil.ts';
import { setTimeout as sleep } from 'node:timers/promises';

const idle: Submitter = { submit: async () => ({ accepted: [], rejected: [] }), close: async () => undefined };

function member(mailbox: string, extra: Partial<PoolMemberInput> = {}): PoolMemberInput {
  return { mailbox, submitter: idle, route: 'smtp test:587', connections: 3, perMinute: 30, ...extra };
}

function leaseOf(choice: ReturnType<MailboxPool['choose']>): PoolLease {
  assert.ok('lease' in choice, `expected a mailbox, got ${JSON.stringify(choice)}`);
  return choice.lease;
}

const T0 = Date.parse('2026-12-04T08:00:00Z');

describe('mailbox pool: which mailbox sends a message', () => {
  test("a sender some mailboxes list in sendAs (or are) goes only through those; others are spread over all", () => {
    const pool = new MailboxPool([member('a@contoso.com', { sendAs: ['Scanner@contoso.com'] }), member('b@contoso.com'), member('c@contoso.com', { sendAs: ['scanner@contoso.com'] })]);
    for (let i = 0; i < 6; i++) {
      const lease = leaseOf(pool.choose('scanner@contoso.com', 1, true, T0 + i));
      assert.ok(['a@contoso.com', 'c@contoso.com'].includes(lease.member.mailbox ?? ''), `scanner@ went through ${lease.member.mailbox}`);
      lease.finish(1);
    }
    assert.equal(leaseOf(pool.choose('b@contoso.com', 1, true, T0)).member.mailbox, 'b@contoso.com', 'a mailbox sends as itself');
    const used = new Map<string, number>();
    for (let i = 0; i < 9; i++) {
      const lease = leaseOf(pool.choose('ups@contoso.com', 1, true, T0 + 100 + i));
      used.set(lease.member.mailbox ?? '', (used.get(lease.member.mailbox ?? '') ?? 0) + 1);
      lease.finish(1);
    }
    assert.equal(used.size, 3, `an unclaimed sender is spread over all three: ${JSON.stringify([...used])}`);
  });

  test('the least loaded mailbox is chosen, and each has its own per-minute limit', () => {
    const pool = new MailboxPool([member('a@contoso.com', { perMinute: 2 }), member('b@contoso.com', { perMinute: 2 })]);
    const mailboxes: string[] = [];
    for (let i = 0; i < 4; i++) {
      const lease = leaseOf(pool.choose('ups@contoso.com', 1, true, T0));
      mailboxes.push(lease.member.mailbox ?? '');
      lease.finish(1);
    }
    assert.deepEqual(mailboxes.sort(), ['a@contoso.com', 'a@contoso.com', 'b@contoso.com', 'b@contoso.com']);
    const full = pool.choose('ups@contoso.com', 1, true, T0 + 1_000);
    assert.deepEqual(full, { retryAt: T0 + 60_000 }, 'both windows full: look again when the first opens');
    assert.equal(pool.nextStartAt(T0 + 1_000), T0 + 60_000);
  });

  test("a finished delivery's rate slot counts from when the upstream answered, so the next minute opens a minute after the answer", () => {
    const pool = new MailboxPool([member('a@contoso.com', { perMinute: 1 })]);
    // The first message of a connection: TLS and AUTH before Exchange counted it, 900 ms after the start.
    leaseOf(pool.choose('ups@contoso.com', 1, true, T0)).finish(1, T0 + 900);
    assert.deepEqual(pool.choose('ups@contoso.com', 1, true, T0 + 60_000), { retryAt: T0 + 60_900 });
    assert.equal(pool.nextStartAt(T0 + 60_000), T0 + 60_900);
    leaseOf(pool.choose('ups@contoso.com', 1, true, T0 + 60_900)).finish(1);
    assert.equal(pool.nextStartAt(T0 + 61_000), T0 + 120_900, 'without an answer time the slot counts from its start');
  });

  test('a paused mailbox holds only the mail that must use it', () => {
    const pool = new MailboxPool([member('a@contoso.com', { sendAs: ['fax@contoso.com'] }), member('b@contoso.com')]);
    const [a] = pool.members;
    pool.pause(a!, 60_000, T0);
    assert.deepEqual(pool.choose('fax@contoso.com', 1, true, T0 + 10), { retryAt: T0 + 60_000 });
    assert.equal(leaseOf(pool.choose('ups@contoso.com', 1, true, T0 + 10)).member.mailbox, 'b@contoso.com');
    assert.equal(pool.heldUntil(T0 + 10), 0, 'not every mailbox is paused');
  });

  test('a cancelled lease gives the rate slot, the connection and the recipients back', () => {
    const pool = new MailboxPool([member('a@contoso.com', { perMinute: 1, connections: 1, recipientsPerDay: 5 })]);
    const lease = leaseOf(pool.choose('ups@contoso.com', 5, true, T0));
    assert.ok('retryAt' in pool.choose('ups@contoso.com', 1, true, T0));
    lease.cancel();
    leaseOf(pool.choose('ups@contoso.com', 5, true, T0)).finish(3);
    // 3 of 5 recipients counted: 2 more fit, 3 do not.
    assert.equal(pool.members[0]!.recipients.total(T0), 3);
  });
});

describe('mailbox pool: recipients per 24 hours', () => {
  test('a mailbox at its budget passes its mail to another permitted mailbox, or it waits until the window frees room', () => {
    const pool = new MailboxPool([member('a@contoso.com', { recipientsPerDay: 3, sendAs: ['fax@contoso.com'] }), member('b@contoso.com', { recipientsPerDay: 100 })]);
    leaseOf(pool.choose('fax@contoso.com', 3, true, T0)).finish(3);
    // ups@ is unclaimed: a is full, so b takes it.
    assert.equal(leaseOf(pool.choose('ups@contoso.com', 1, true, T0 + BUCKET_MS)).member.mailbox, 'b@contoso.com');
    // fax@ may only use a: it waits for a day after the first recipients were counted (never refused).
    const choice = pool.choose('fax@contoso.com', 1, true, T0 + BUCKET_MS);
    assert.deepEqual(choice, { retryAt: T0 + BUCKET_MS + RECIPIENT_BUDGET_WINDOW_MS });
    assert.equal(leaseOf(pool.choose('fax@contoso.com', 1, true, T0 + BUCKET_MS + RECIPIENT_BUDGET_WINDOW_MS)).member.mailbox, 'a@contoso.com');
  });

  test('a rolling count forgets what left the window and never more', () => {
    const count = new RollingCount(RECIPIENT_BUDGET_WINDOW_MS);
    count.add(4, T0);
    count.add(6, T0 + 3_600_000);
    assert.equal(count.roomAt(4, 10, T0 + 7_200_000), T0 + BUCKET_MS + RECIPIENT_BUDGET_WINDOW_MS);
    assert.equal(count.roomAt(5, 10, T0 + 7_200_000), T0 + 3_600_000 + BUCKET_MS + RECIPIENT_BUDGET_WINDOW_MS);
    assert.equal(count.roomAt(50, 10, T0 + 7_200_000), T0 + 3_600_000 + BUCKET_MS + RECIPIENT_BUDGET_WINDOW_MS, 'more than the limit at once waits for an empty window');
    // Time only moves forward for a count: what left the window is forgotten.
    assert.equal(count.total(T0 + RECIPIENT_BUDGET_WINDOW_MS - 1), 10);
    assert.equal(count.total(T0 + RECIPIENT_BUDGET_WINDOW_MS + BUCKET_MS), 6);
  });

  describe('persisted in the spool folder', () => {
    let dir: string;
    before(async () => {
      dir = await mkdtemp(join(tmpdir(), 'smarthost-budget-'));
    });
    after(async () => {
      await rm(dir, { recursive: true, force: true });
    });

    test(`the counts are written at most every ${BUDGET_SAVE_INTERVAL_MS / 1000} s while mail flows, the latest on shutdown`, async () => {
      const folder = await mkdtemp(join(tmpdir(), 'smarthost-budget-interval-'));
      try {
        const store = recipientBudgetFile(folder);
        const counts = (n: number) => () => ({ 'a@contoso.com': [[0, n]] as [number, number][] });
        const saved = async () => (JSON.parse(await readFile(join(folder, RECIPIENT_BUDGET_FILE), 'utf8')) as { mailboxes: Record<string, [number, number][]> }).mailboxes['a@contoso.com']?.[0]?.[1];
        const take = (n: number) => store.take({ mailbox: 'a@contoso.com', recipients: 1, recipientsPerDay: 10, now: Date.now(), counts: counts(n) });
        await take(1);
        await pollUntil(async () => (await saved().catch(() => undefined)) === 1, 5_000, 'the first counts written at once');
        for (let n = 2; n <= 50; n++) await take(n);
        await sleep(300);
        assert.equal(await saved(), 1, 'the next write waits for the interval');
        await store.flush();
        assert.equal(await saved(), 50, 'shutdown writes the latest');
      } finally {
        await rm(folder, { recursive: true, force: true });
      }
    });

    test('the counts survive a restart: a new pool over the same folder still sees the mailbox full', async () => {
      const first = new MailboxPool([member('a@contoso.com', { recipientsPerDay: 4 }), member('b@contoso.com', { recipientsPerDay: 4 })], { budgetStore: recipientBudgetFile(dir) });
      await first.load();
      const now = Date.now();
      for (let i = 0; i < 2; i++) {
        // The delivery loop asks the store for each lease (confirm); the spool file's always grants.
        const lease = leaseOf(first.choose('a@contoso.com', 2, true, now));
        assert.equal(await first.confirm(lease, now), undefined);
        await lease.finish(2);
      }
      await first.close();
      const saved = JSON.parse(await readFile(join(dir, RECIPIENT_BUDGET_FILE), 'utf8')) as { version: number; mailboxes: Record<string, [number, number][]> };
      assert.equal(saved.version, 1);
      assert.equal(saved.mailboxes['a@contoso.com']?.reduce((sum, [, c]) => sum + c, 0), 4);

      const second = new MailboxPool([member('A@contoso.com', { recipientsPerDay: 4 }), member('b@contoso.com', { recipientsPerDay: 4 })], { budgetStore: recipientBudgetFile(dir) });
      await second.load();
      assert.ok('retryAt' in second.choose('a@contoso.com', 1, true, now), 'a is still at its 4 recipients after the restart');
      assert.equal(leaseOf(second.choose('ups@contoso.com', 1, true, now)).member.mailbox, 'b@contoso.com');
      await second.close();
    });

    test('an unreadable file counts as empty, with a warning, rather than stopping delivery', async () => {
      const bad = await mkdtemp(join(tmpdir(), 'smarthost-budget-bad-'));
      try {
        const { writeFile } = await import('node:fs/promises');
        await writeFile(join(bad, RECIPIENT_BUDGET_FILE), '{"version":1,"mailboxes":');
        const warnings: string[] = [];
        const pool = new MailboxPool([member('a@contoso.com', { recipientsPerDay: 4 })], {
          budgetStore: recipientBudgetFile(bad),
          logger: { debug() {}, info() {}, warn: (_f, m) => warnings.push(m), error() {} },
        });
        await pool.load();
        assert.deepEqual(warnings, ['could not read the recipient counts: counting from zero']);
        leaseOf(pool.choose('a@contoso.com', 4, true)).finish(4);
      } finally {
        await rm(bad, { recursive: true, force: true });
      }
    });
  });
});

describe("mailbox pool: Exchange's receiving limit per recipient", () => {
  test('a recipient that got its messages this hour waits; others do not', () => {
    const pool = new MailboxPool([member('a@contoso.com')], { perRecipientPerHour: 2 });
    assert.equal(pool.takeRecipients(['Ops@contoso.com'], T0).openAt, T0);
    assert.equal(pool.takeRecipients(['ops@contoso.com'], T0 + 1_000).openAt, T0 + 1_000);
    assert.equal(pool.takeRecipients(['ops@contoso.com', 'you@contoso.com'], T0 + 2_000).openAt, T0 + BUCKET_MS + 3_600_000);
    // Nothing was taken for you@ by the refused reservation: it still has both.
    assert.equal(pool.takeRecipients(['you@contoso.com'], T0 + 2_000).openAt, T0 + 2_000);
    assert.equal(pool.takeRecipients(['you@contoso.com'], T0 + 2_000).openAt, T0 + 2_000);
    assert.ok(pool.takeRecipients(['you@contoso.com'], T0 + 2_000).openAt > T0 + 2_000);
  });

  test('deliveries side by side see each other: the third at once to one address waits', () => {
    const pool = new MailboxPool([member('a@contoso.com')], { perRecipientPerHour: 2 });
    const first = pool.takeRecipients(['ops@contoso.com'], T0);
    const second = pool.takeRecipients(['ops@contoso.com'], T0);
    assert.equal(first.openAt, T0);
    assert.equal(second.openAt, T0);
    assert.ok(pool.takeRecipients(['ops@contoso.com'], T0).openAt > T0, 'taken before either attempt finished');
    // The first attempt did not reach ops@ (deferred): its place is given back.
    first.release(['ops@contoso.com']);
    first.release(['ops@contoso.com']);
    assert.equal(pool.takeRecipients(['ops@contoso.com'], T0).openAt, T0);
    assert.ok(pool.takeRecipients(['ops@contoso.com'], T0).openAt > T0, 'a second release gives nothing more back');
  });
});

describe('mailbox pool: acquire, for a runtime that does not schedule (the cloud)', () => {
  test('waits for a busy connection to free, and past its wait names what holds the mail', async () => {
    const pool = new MailboxPool([member('a@contoso.com', { connections: 1 })]);
    const first = await pool.acquire('ups@contoso.com', 1, 0);
    assert.ok('lease' in first);
    const none = await pool.acquire('ups@contoso.com', 1, 20);
    assert.deepEqual(none, { retryAt: Infinity, reason: 'a@contoso.com has all its 1 connections busy' });
    const waiting = pool.acquire('ups@contoso.com', 1, 5_000);
    setTimeout(() => void first.lease.finish(1), 50);
    const second = await waiting;
    assert.ok('lease' in second && second.lease.member.mailbox === 'a@contoso.com');
  });

  test('a mailbox at its recipients per 24 hours is named with its limit and when it opens', async () => {
    const pool = new MailboxPool([member('a@contoso.com', { recipientsPerDay: 2, sendAs: ['fax@contoso.com'] }), member('b@contoso.com')]);
    const taken = await pool.acquire('fax@contoso.com', 2, 0);
    assert.ok('lease' in taken);
    await taken.lease.finish(2);
    const wait = await pool.acquire('fax@contoso.com', 1, 1_000);
    assert.ok('retryAt' in wait);
    assert.equal(wait.reason, `a@contoso.com reached its 2 recipients per 24 hours until ${new Date(wait.retryAt).toISOString()}`);
    assert.ok(wait.retryAt > Date.now() + RECIPIENT_BUDGET_WINDOW_MS - BUCKET_MS);
  });

  test('a store that refuses a take: the lease is given back and the mailbox left alone until the store says', async () => {
    const refusedAt = Date.now() + 3_600_000;
    let takes = 0;
    const pool = new MailboxPool([member('a@contoso.com', { recipientsPerDay: 10, connections: 1 })], {
      budgetStore: {
        load: async () => ({}),
        take: async () => {
          takes += 1;
          return { refused: { limit: 'recipientsPerDay', retryAt: refusedAt } };
        },
        giveBack: async () => assert.fail('nothing was granted'),
        flush: async () => undefined,
      },
    });
    const wait = await pool.acquire('ups@contoso.com', 1, 0);
    assert.deepEqual(wait, { retryAt: refusedAt, reason: `a@contoso.com reached its 10 recipients per 24 hours until ${new Date(refusedAt).toISOString()}` });
    assert.equal(pool.members[0]?.inFlight, 0, 'the connection was given back');
    assert.equal(pool.members[0]?.recipients.total(), 0, 'and the recipients');
    assert.ok('retryAt' in (await pool.acquire('ups@contoso.com', 1, 0)));
    assert.equal(takes, 1, 'not asked again before its time');
  });
});
