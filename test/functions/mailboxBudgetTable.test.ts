import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { GetItemCommand } from '@aws-sdk/client-dynamodb';
import { LEDGER_KEY, MAILBOX_BUDGET_KEY_PREFIX } from '../../contract/cloudResources.ts';
import { RECIPIENT_BUDGET_WINDOW_MS } from '../../delivery/exchangeLimits.ts';
import type { BudgetAnswer, BudgetTake } from '../../delivery/pool/mailboxBudget.ts';
import { MailboxPool } from '../../delivery/pool/mailboxPool.ts';
import type { Submitter } from '../../delivery/smtp/submission.ts';
import { BUDGET_HOUR_MS, MailboxBudgetTable } from '../../functions/queue-delivery/mailboxBudgetTable.ts';
import { startLocalDynamo, type LocalDynamo } from '../../testbed/aws/localDynamo.ts';
import { startAwsTap, type AwsTap } from './awsTap.ts';

/**
 * The cloud's shared mailbox budget (functions/queue-delivery/mailboxBudgetTable.ts) against the
 * DynamoDB stand-in: takes that race on one item never pass its limit together.
 */

/** An hour boundary, so a test's takes fall into known hour and minute counts. */
const T0 = Date.UTC(2026, 11, 4, 10, 0, 0);
const noSubmitter: Submitter = { submit: async () => assert.fail('not submitted in these tests'), close: async () => undefined };

function takeOf(mailbox: string, fields: Partial<BudgetTake>): BudgetTake {
  return { mailbox, recipients: 1, now: T0, counts: () => ({}), ...fields };
}

const granted = (answers: BudgetAnswer[]) => answers.filter((a) => 'granted' in a).length;

describe('mailbox budget in the ledger table', () => {
  let dynamo: LocalDynamo;
  let tap: AwsTap;
  let table: MailboxBudgetTable;
  /** A second instance: its own client and store over the same table. */
  let other: MailboxBudgetTable;

  before(async () => {
    dynamo = await startLocalDynamo();
    tap = await startAwsTap(dynamo.endpoint);
    const { DynamoDBClient } = await import('@aws-sdk/client-dynamodb');
    const { TEST_CREDENTIALS, TEST_REGION } = await import('../../testbed/aws/awsTestEnv.ts');
    table = new MailboxBudgetTable(new DynamoDBClient({ endpoint: tap.endpoint, region: TEST_REGION, credentials: TEST_CREDENTIALS }), dynamo.tableName);
    other = new MailboxBudgetTable(new DynamoDBClient({ endpoint: tap.endpoint, region: TEST_REGION, credentials: TEST_CREDENTIALS }), dynamo.tableName);
  });
  after(async () => {
    await Promise.all([table?.flush(), other?.flush()]);
    await Promise.all([tap?.stop(), dynamo?.stop()]);
  });

  test('20 takes racing from two instances on a budget of 5 recipients: exactly 5 granted, the rest told when the window frees them', async () => {
    const mailbox = 'race@contoso.com';
    const answers = await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? table : other).take(takeOf(mailbox, { recipientsPerDay: 5, now: T0 + i }))));
    assert.equal(granted(answers), 5);
    for (const answer of answers) {
      if ('refused' in answer) assert.deepEqual(answer.refused, { limit: 'recipientsPerDay', retryAt: T0 + BUDGET_HOUR_MS + RECIPIENT_BUDGET_WINDOW_MS });
    }
    const { Item } = await dynamo.client.send(new GetItemCommand({ TableName: dynamo.tableName, Key: { [LEDGER_KEY]: { S: `${MAILBOX_BUDGET_KEY_PREFIX}${mailbox}` } }, ConsistentRead: true }));
    assert.equal(Item?.total?.N, '5');
    assert.equal(Item?.[`h${T0}`]?.N, '5');
  });

  test('messages per minute: 2 of 3 racing takes pass, the third waits for the next minute; a take is one UpdateItem', async () => {
    const mailbox = 'rate@contoso.com';
    const callsBefore = tap.calls.length;
    const answers = await Promise.all([table, other, table].map((store, i) => store.take(takeOf(mailbox, { recipients: 0, perMinute: 2, now: T0 + 5_000 + i }))));
    assert.equal(granted(answers), 2);
    assert.deepEqual(
      answers.flatMap((a) => ('refused' in a ? [a.refused] : [])),
      [{ limit: 'perMinute', retryAt: T0 + 60_000 }],
    );
    // Two granted takes, one refused take and the read that said until when.
    assert.deepEqual(tap.calls.slice(callsBefore).map((c) => c.operation).sort(), ['GetItem', 'UpdateItem', 'UpdateItem', 'UpdateItem']);
    assert.ok('granted' in (await table.take(takeOf(mailbox, { recipients: 0, perMinute: 2, now: T0 + 60_000 }))), 'the next minute has room');
  });

  test('recipients given back (not accepted, or nothing sent) are free for the next take', async () => {
    const mailbox = 'giveback@contoso.com';
    const first = await table.take(takeOf(mailbox, { recipients: 4, recipientsPerDay: 4, perMinute: 1 }));
    assert.ok('granted' in first);
    assert.ok('refused' in (await other.take(takeOf(mailbox, { recipients: 1, recipientsPerDay: 4, now: T0 + 10 }))));
    await table.giveBack(first.granted, { recipients: 3, message: true });
    // The message slot and 3 recipients came back: 3 fit, 4 do not.
    assert.ok('refused' in (await other.take(takeOf(mailbox, { recipients: 4, recipientsPerDay: 4, now: T0 + 20 }))));
    assert.ok('granted' in (await other.take(takeOf(mailbox, { recipients: 3, recipientsPerDay: 4, perMinute: 1, now: T0 + 30 }))));
  });

  test('an hour that left the window is removed, subtracted once, and makes room', async () => {
    const mailbox = 'window@contoso.com';
    assert.ok('granted' in (await table.take(takeOf(mailbox, { recipients: 3, recipientsPerDay: 4 }))));
    const later = T0 + 3 * BUDGET_HOUR_MS;
    assert.ok('granted' in (await table.take(takeOf(mailbox, { recipients: 1, recipientsPerDay: 4, now: later }))));
    // Full until the first hour leaves the 24 hours.
    const full = await other.take(takeOf(mailbox, { recipients: 1, recipientsPerDay: 4, now: later + 1 }));
    assert.deepEqual(full, { refused: { limit: 'recipientsPerDay', retryAt: T0 + BUDGET_HOUR_MS + RECIPIENT_BUDGET_WINDOW_MS } });
    // Two instances at once once it has: the total still holds the old hour, and only one of them
    // may subtract it; 3 fit beside the later hour's 1.
    const open = T0 + BUDGET_HOUR_MS + RECIPIENT_BUDGET_WINDOW_MS;
    const answers = await Promise.all([table, other].map((store) => store.take(takeOf(mailbox, { recipients: 2, recipientsPerDay: 4, now: open }))));
    await Promise.all([table.flush(), other.flush()]);
    const { Item } = await dynamo.client.send(new GetItemCommand({ TableName: dynamo.tableName, Key: { [LEDGER_KEY]: { S: `${MAILBOX_BUDGET_KEY_PREFIX}${mailbox}` } }, ConsistentRead: true }));
    const hours = Object.keys(Item ?? {}).filter((name) => name.startsWith('h')).sort();
    assert.equal(granted(answers), 1, 'room for one of the two');
    assert.deepEqual(hours, [`h${T0 + 3 * BUDGET_HOUR_MS}`, `h${open - (open % BUDGET_HOUR_MS)}`].sort(), 'the old hour is gone');
    assert.equal(Item?.total?.N, '3', 'the live hours: 1 + 2, the old hour subtracted once');
  });

  test('a take that passes removes an hour that left the window behind it (total and hour counts agree)', async () => {
    const mailbox = 'tidy@contoso.com';
    assert.ok('granted' in (await table.take(takeOf(mailbox, { recipients: 3, recipientsPerDay: 100 }))));
    const next = T0 + BUDGET_HOUR_MS + RECIPIENT_BUDGET_WINDOW_MS;
    assert.ok('granted' in (await other.take(takeOf(mailbox, { recipients: 1, recipientsPerDay: 100, now: next }))));
    await other.flush();
    const { Item } = await dynamo.client.send(new GetItemCommand({ TableName: dynamo.tableName, Key: { [LEDGER_KEY]: { S: `${MAILBOX_BUDGET_KEY_PREFIX}${mailbox}` } }, ConsistentRead: true }));
    assert.deepEqual(
      Object.keys(Item ?? {}).filter((name) => name.startsWith('h')),
      [`h${next - (next % BUDGET_HOUR_MS)}`],
    );
    assert.equal(Item?.total?.N, '1');
  });

  test('the pool asks the table once its own counts let a delivery go, and a refused mailbox hands the mail to another permitted one', async () => {
    const pool = (store: MailboxBudgetTable) =>
      new MailboxPool(
        [
          { mailbox: 'poola@contoso.com', submitter: noSubmitter, route: 'test', connections: 5, recipientsPerDay: 2 },
          { mailbox: 'poolb@contoso.com', submitter: noSubmitter, route: 'test', connections: 5, recipientsPerDay: 100 },
        ],
        { budgetStore: store },
      );
    const first = pool(table);
    const second = pool(other);
    // Each instance alone would let 2 recipients through poola@; together they have 2.
    const a = await first.acquire('poola@contoso.com', 2, 0);
    assert.ok('lease' in a && a.lease.member.mailbox === 'poola@contoso.com');
    const b = await second.acquire('poola@contoso.com', 1, 0);
    assert.ok('retryAt' in b);
    assert.match(b.reason, /^poola@contoso\.com reached its 2 recipients per 24 hours until \d{4}-/);
    // Mail any mailbox may send moves on to poolb@ in the refused instance.
    const c = await second.acquire('ups@contoso.com', 1, 0);
    assert.ok('lease' in c && c.lease.member.mailbox === 'poolb@contoso.com');
    await a.lease.finish(2);
    await c.lease.finish(1);
  });

  test('a mailbox one instance was throttled on is held in the others until the pause ends; a shorter pause does not cut it short', async () => {
    const now = Date.now();
    const pool = (store: MailboxBudgetTable) => new MailboxPool([{ mailbox: 'paused@contoso.com', submitter: noSubmitter, route: 'test', connections: 5, perMinute: 1000 }], { budgetStore: store });
    const throttled = pool(table);
    const elsewhere = pool(other);
    throttled.pause(throttled.members[0]!, 60_000, now);
    await table.flush();
    await other.pause('paused@contoso.com', now + 1_000);
    const waited = await elsewhere.acquire('scanner@contoso.com', 1, 0);
    assert.ok('retryAt' in waited, 'held in the other instance');
    assert.equal(waited.retryAt, now + 60_000);
    assert.equal(waited.reason, `paused@contoso.com is held after Exchange Online throttled or blocked it until ${new Date(now + 60_000).toISOString()}`);
    // The pause is the instance's own now: it does not ask the table again before it ends.
    assert.equal(elsewhere.members[0]?.pausedUntil, now + 60_000);
    // Once it has ended, a take passes.
    const later = await other.take(takeOf('paused@contoso.com', { perMinute: 1000, now: now + 60_001 }));
    assert.ok('granted' in later);
  });
});
