import { ConditionalCheckFailedException, GetItemCommand, UpdateItemCommand, type AttributeValue, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { LEDGER_KEY, LEDGER_TTL_ATTRIBUTE, MAILBOX_BUDGET_KEY_PREFIX } from '../../contract/cloudResources.ts';
import { RECIPIENT_BUDGET_WINDOW_MS } from '../../delivery/exchangeLimits.ts';
import type { BudgetAnswer, BudgetGrant, BudgetTake, MailboxBudgetStore } from '../../delivery/pool/mailboxBudget.ts';

/**
 * Recipients are counted by the hour: a mailbox's item holds about 25 hour counts and stays under
 * 1 KB (one write unit per take); a count leaves the 24 hours up to an hour late, never early.
 */
export const BUDGET_HOUR_MS = 3_600_000;
/** Messages per minute are counted by calendar minute. */
const MINUTE_MS = 60_000;
/** Minute counts an item gathers before a take removes the old ones (an hour of traffic). */
const MINUTES_KEPT = 60;

/** The recipients of the hour counts not yet removed: a take's condition reads it. */
const TOTAL = 'total';
/** Epoch ms until which every take is refused: an instance was throttled or blocked on the mailbox. */
const PAUSED_UNTIL = 'pausedUntil';
const hourName = (start: number) => `h${start}`;
const minuteName = (start: number) => `m${start}`;

interface Counts {
  total: number;
  /** [start, count] of each hour count, oldest first. */
  hours: [number, number][];
  minutes: Map<number, number>;
}

function countsOf(item: Record<string, AttributeValue> | undefined): Counts {
  const counts: Counts = { total: Number(item?.[TOTAL]?.N ?? 0), hours: [], minutes: new Map() };
  for (const [name, value] of Object.entries(item ?? {})) {
    const start = Number(name.slice(1));
    if (!Number.isSafeInteger(start) || value.N === undefined) continue;
    if (name.startsWith('h')) counts.hours.push([start, Number(value.N)]);
    else if (name.startsWith('m')) counts.minutes.set(start, Number(value.N));
  }
  counts.hours.sort((a, b) => a[0] - b[0]);
  return counts;
}

/**
 * The cloud's MailboxBudgetStore: one item per mailbox in the ledger table that every function
 * instance takes from with a conditional UpdateItem (ADD under a ConditionExpression), so two
 * instances taking at the same moment cannot both pass the limit: DynamoDB applies one, then
 * checks the other against the new count. A take is one call; giving recipients back (the
 * upstream did not take them all, or nothing was sent) one more; a refusal reads the item once to
 * say when the budget opens. About once an hour a take also removes the hour that left the window
 * (conditional on its count, so two instances removing it subtract it once).
 */
export class MailboxBudgetTable implements MailboxBudgetStore {
  private readonly pending = new Set<Promise<unknown>>();

  constructor(
    private readonly dynamo: Pick<DynamoDBClient, 'send'>,
    private readonly table: string,
    private readonly windowMs = RECIPIENT_BUDGET_WINDOW_MS,
  ) {}

  /** Nothing to start from: the counts live in the table. */
  async load(): Promise<Record<string, [number, number][]>> {
    return {};
  }

  async take(request: BudgetTake): Promise<BudgetAnswer> {
    const { now } = request;
    const recipients = request.recipientsPerDay === undefined ? 0 : request.recipients;
    const message = request.perMinute !== undefined;
    const grant: BudgetGrant = { mailbox: request.mailbox, at: now, recipients, message };
    if (recipients === 0 && !message) return { granted: grant };
    try {
      const { Attributes } = await this.dynamo.send(new UpdateItemCommand({ ...this.takeUpdate(request, recipients, { expired: [], sum: 0 }), ReturnValues: 'ALL_NEW' }));
      this.tidy(request.mailbox, countsOf(Attributes), now);
      return { granted: grant };
    } catch (error) {
      if (!(error instanceof ConditionalCheckFailedException)) throw error;
    }
    // Refused: read what stands in the way, and when it clears.
    const { Item } = await this.dynamo.send(new GetItemCommand({ TableName: this.table, Key: this.key(request.mailbox), ConsistentRead: true }));
    const counts = countsOf(Item);
    const pausedUntil = Number(Item?.[PAUSED_UNTIL]?.N ?? 0);
    if (pausedUntil > now) return { refused: { limit: 'paused', retryAt: pausedUntil } };
    const minute = now - (now % MINUTE_MS);
    if (request.perMinute !== undefined && (counts.minutes.get(minute) ?? 0) >= request.perMinute) {
      return { refused: { limit: 'perMinute', retryAt: minute + MINUTE_MS } };
    }
    const limit = request.recipientsPerDay ?? Infinity;
    const needed = Math.min(recipients, limit);
    const expired = counts.hours.filter(([start]) => this.expired(start, now));
    const live = counts.hours.filter(([start]) => !this.expired(start, now));
    let liveTotal = live.reduce((sum, [, count]) => sum + count, 0);
    if (expired.length > 0 && liveTotal + needed <= limit) {
      // The count still held an hour that left the window: removed and taken in one call.
      const sum = counts.total - liveTotal;
      try {
        await this.dynamo.send(new UpdateItemCommand(this.takeUpdate(request, recipients, { expired, sum })));
        return { granted: grant };
      } catch (error) {
        if (!(error instanceof ConditionalCheckFailedException)) throw error;
        // Another instance removed it or took the room first: look again shortly.
        return { refused: { limit: 'recipientsPerDay', retryAt: now + 1_000 } };
      }
    }
    for (const [start, count] of live) {
      if (liveTotal + needed <= limit) break;
      liveTotal -= count;
      if (liveTotal + needed <= limit) return { refused: { limit: 'recipientsPerDay', retryAt: start + BUDGET_HOUR_MS + this.windowMs } };
    }
    // Taken by someone else between the refusal and the read: try again shortly.
    return { refused: { limit: 'recipientsPerDay', retryAt: now + 1_000 } };
  }

  async giveBack(grant: BudgetGrant, unused: { recipients: number; message: boolean }): Promise<void> {
    const recipients = Math.min(unused.recipients, grant.recipients);
    if (recipients <= 0 && !unused.message) return;
    const hour = hourName(grant.at - (grant.at % BUDGET_HOUR_MS));
    const minute = minuteName(grant.at - (grant.at % MINUTE_MS));
    const adds: string[] = [];
    const conditions: string[] = [];
    const names: Record<string, string> = {};
    const values: Record<string, AttributeValue> = {};
    if (recipients > 0) {
      adds.push('#h :minusRcpts', '#total :minusRcpts');
      // Not into an hour already removed from the window: that would count it negative.
      conditions.push('attribute_exists(#h)');
      Object.assign(names, { '#h': hour, '#total': TOTAL });
      values[':minusRcpts'] = { N: String(-recipients) };
    }
    if (unused.message) {
      adds.push('#m :minusOne');
      conditions.push('attribute_exists(#m)');
      names['#m'] = minute;
      values[':minusOne'] = { N: '-1' };
    }
    await this.track(
      this.dynamo
        .send(new UpdateItemCommand({ TableName: this.table, Key: this.key(grant.mailbox), UpdateExpression: `ADD ${adds.join(', ')}`, ConditionExpression: conditions.join(' AND '), ExpressionAttributeNames: names, ExpressionAttributeValues: values }))
        .catch((error: unknown) => {
          if (!(error instanceof ConditionalCheckFailedException)) throw error;
        }),
    );
  }

  /** Keeps the later of two pauses: conditional on the one stored ending sooner. */
  async pause(mailbox: string, until: number): Promise<void> {
    await this.track(
      this.dynamo
        .send(
          new UpdateItemCommand({
            TableName: this.table,
            Key: this.key(mailbox),
            UpdateExpression: 'SET #p = :until, #ttl = if_not_exists(#ttl, :ttl)',
            ConditionExpression: 'attribute_not_exists(#p) OR #p < :until',
            ExpressionAttributeNames: { '#p': PAUSED_UNTIL, '#ttl': LEDGER_TTL_ATTRIBUTE },
            ExpressionAttributeValues: { ':until': { N: String(until) }, ':ttl': { N: String(Math.floor((until + this.windowMs) / 1000)) } },
          }),
        )
        .catch((error: unknown) => {
          if (!(error instanceof ConditionalCheckFailedException)) throw error;
        }),
    );
  }

  async flush(): Promise<void> {
    while (this.pending.size > 0) await Promise.allSettled([...this.pending]);
  }

  private key(mailbox: string): Record<string, AttributeValue> {
    return { [LEDGER_KEY]: { S: `${MAILBOX_BUDGET_KEY_PREFIX}${mailbox}` } };
  }

  /** An hour count whose every recipient left the window. */
  private expired(start: number, now: number): boolean {
    return start + BUDGET_HOUR_MS + this.windowMs <= now;
  }

  /**
   * The conditional take: the hour's and minute's counts and the total go up only when the total
   * leaves room for the recipients (more than the limit at once fits only an empty window) and the
   * minute has a message to spare. With `expired`, those hour counts go in the same write,
   * on condition they still hold what was read.
   */
  private takeUpdate(request: BudgetTake, recipients: number, drop: { expired: [number, number][]; sum: number }): ConstructorParameters<typeof UpdateItemCommand>[0] {
    const { now } = request;
    const names: Record<string, string> = { '#ttl': LEDGER_TTL_ATTRIBUTE, '#p': PAUSED_UNTIL };
    const values: Record<string, AttributeValue> = { ':ttl': { N: String(Math.floor((now + this.windowMs + 2 * BUDGET_HOUR_MS) / 1000)) }, ':now': { N: String(now) } };
    const adds: string[] = [];
    // Not while another instance holds the mailbox after Exchange throttled it.
    const conditions: string[] = ['(attribute_not_exists(#p) OR #p <= :now)'];
    if (recipients > 0 && request.recipientsPerDay !== undefined) {
      Object.assign(names, { '#total': TOTAL, '#h': hourName(now - (now % BUDGET_HOUR_MS)) });
      values[':rcpts'] = { N: String(recipients) };
      values[':room'] = { N: String(request.recipientsPerDay - Math.min(recipients, request.recipientsPerDay) + drop.sum) };
      adds.push('#h :rcpts');
      if (drop.sum !== 0) {
        values[':totalDelta'] = { N: String(recipients - drop.sum) };
        adds.push('#total :totalDelta');
      } else {
        adds.push('#total :rcpts');
      }
      conditions.push('(attribute_not_exists(#total) OR #total <= :room)');
    }
    if (request.perMinute !== undefined) {
      names['#m'] = minuteName(now - (now % MINUTE_MS));
      values[':one'] = { N: '1' };
      values[':perMinute'] = { N: String(request.perMinute) };
      adds.push('#m :one');
      conditions.push('(attribute_not_exists(#m) OR #m < :perMinute)');
    }
    const removes = drop.expired.map(([start], i) => {
      names[`#x${i}`] = hourName(start);
      values[`:x${i}`] = { N: String(drop.expired[i]?.[1]) };
      conditions.push(`#x${i} = :x${i}`);
      return `#x${i}`;
    });
    return {
      TableName: this.table,
      Key: this.key(request.mailbox),
      UpdateExpression: `SET #ttl = :ttl ADD ${adds.join(', ')}${removes.length > 0 ? ` REMOVE ${removes.join(', ')}` : ''}`,
      ConditionExpression: conditions.join(' AND '),
      ExpressionAttributeNames: names,
      ExpressionAttributeValues: values,
    };
  }

  /**
   * After a take: removes the hours that left the window (subtracted from the total, on condition
   * they still hold what was read) and, past an hour of them, the minute counts before the last
   * minute. In the background; a removal another instance did first fails its condition, harmlessly.
   */
  private tidy(mailbox: string, counts: Counts, now: number): void {
    const expired = counts.hours.filter(([start]) => this.expired(start, now));
    const oldMinutes = counts.minutes.size > MINUTES_KEPT ? [...counts.minutes.keys()].filter((start) => start < now - (now % MINUTE_MS) - MINUTE_MS) : [];
    if (expired.length === 0 && oldMinutes.length === 0) return;
    const names: Record<string, string> = {};
    const values: Record<string, AttributeValue> = {};
    const removes: string[] = [];
    const conditions: string[] = [];
    expired.forEach(([start, count], i) => {
      names[`#x${i}`] = hourName(start);
      values[`:x${i}`] = { N: String(count) };
      conditions.push(`#x${i} = :x${i}`);
      removes.push(`#x${i}`);
    });
    oldMinutes.forEach((start, i) => {
      names[`#o${i}`] = minuteName(start);
      removes.push(`#o${i}`);
    });
    const sum = expired.reduce((total, [, count]) => total + count, 0);
    let update = `REMOVE ${removes.join(', ')}`;
    if (sum > 0) {
      names['#total'] = TOTAL;
      values[':minus'] = { N: String(-sum) };
      update += ' ADD #total :minus';
    }
    void this.track(
      this.dynamo
        .send(
          new UpdateItemCommand({
            TableName: this.table,
            Key: this.key(mailbox),
            UpdateExpression: update,
            ...(conditions.length > 0 ? { ConditionExpression: conditions.join(' AND '), ExpressionAttributeValues: values } : {}),
            ExpressionAttributeNames: names,
          }),
        )
        .catch(() => undefined),
    );
  }

  private track<T>(promise: Promise<T>): Promise<T> {
    this.pending.add(promise);
    void promise.finally(() => this.pending.delete(promise)).catch(() => undefined);
    return promise;
  }
}
