import { randomUUID } from 'node:crypto';
import { ConditionalCheckFailedException, GetItemCommand, UpdateItemCommand, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { AttributeValue } from '@aws-sdk/client-dynamodb';
import { LEDGER_KEY, LEDGER_TTL_ATTRIBUTE } from '../../contract/cloudResources.ts';
import type { DeliveryEvent, DeliveryHistoryStore, NoticeEvent, RecipientReply } from '../../delivery/history/deliveryEvent.ts';

/** The ledger item's list of events, one JSON string each. */
const HISTORY_ATTRIBUTE = 'history';
/** Who holds the lease: a fresh token per claim, so only its holder extends, settles or releases it. */
const OWNER_ATTRIBUTE = 'leaseOwner';
/** The addresses (lowercase) a notice of each kind about the message went to: one each, redeliveries and redrives included. */
const NOTICED_ATTRIBUTE = { undeliverable: 'noticedTo', delayed: 'delayNoticedTo' } as const;

/** The claim is no longer this holder's: its lease ran out and another invocation claimed the message. */
export class LeaseLostError extends Error {
  constructor(readonly messageId: string) {
    super(`the ledger lease on message ${messageId} is held by another invocation`);
    this.name = 'LeaseLostError';
  }
}

/**
 * Events a ledger item keeps: the first and the latest. ~100 receives at most reach one message
 * (the queue's maxReceiveCount) and an event is at most ~3 KB, so the item stays far below
 * DynamoDB's 400 KB.
 */
export const LEDGER_HISTORY_EVENTS = 60;

function boundedHistory(events: DeliveryEvent[]): DeliveryEvent[] {
  return events.length <= LEDGER_HISTORY_EVENTS ? events : [events[0] as DeliveryEvent, ...events.slice(events.length - LEDGER_HISTORY_EVENTS + 1)];
}

function eventsOf(item: Record<string, AttributeValue>): DeliveryEvent[] {
  return (item[HISTORY_ATTRIBUTE]?.L ?? []).flatMap((value) => {
    const event = parseJson<DeliveryEvent>(value.S);
    return event ? [event] : [];
  });
}

function parseJson<T>(text: string | undefined): T | undefined {
  if (text === undefined) return undefined;
  try {
    return JSON.parse(text) as T;
  } catch {
    return undefined;
  }
}

export type ClaimResult =
  /**
   * This invocation may deliver; these recipients already have the message. `attempts` counts
   * this one (a claim is an attempt; a busy redelivery claims nothing and counts nothing).
   */
  | {
      status: 'claimed';
      /** This claim's token: extendLease, recordSettlement and release act only while it holds. */
      owner: string;
      deliveredRcpts: string[];
      /**
       * The recipients still owed the message as the last settled attempt left them (the deferred
       * ones of a retry, the refused ones of a dead letter, which a redrive sends to); absent
       * before the first settled attempt: all of the envelope's.
       */
      pendingRcpts?: string[];
      attempts: number;
      refused: RecipientReply[];
      history: DeliveryEvent[];
      /** Addresses (lowercase) that got the failure notice about this message already. */
      noticedTo: string[];
      /** Addresses (lowercase) that got its "Delayed" notice already. */
      delayNoticedTo: string[];
    }
  /** Every recipient has it: a redelivery of a finished message. */
  | { status: 'done' }
  /** Another invocation is delivering it right now. */
  | { status: 'busy' };

/**
 * Delivery records in DynamoDB, keyed on the agent's message id: SQS delivers at least once, so
 * before sending, a function claims the message with a conditional write (a lease, so a crashed
 * invocation does not block it for good), and after sending records which recipients the
 * upstream accepted. A redelivered message is then not sent again, neither whole nor to a
 * recipient that already has it. Powertools Idempotency stores a whole result; this also keeps
 * per-recipient progress across retries, which a partial delivery needs.
 */
export class DeliveryLedger {
  constructor(
    private readonly dynamo: Pick<DynamoDBClient, 'send'>,
    private readonly table: string,
    /** How long records are kept (beyond SQS's 14-day retention, so any redelivery finds its record). */
    private readonly retentionSeconds = 15 * 24 * 3600,
  ) {}

  async claim(id: string, leaseMs: number, now = Date.now()): Promise<ClaimResult> {
    const owner = randomUUID();
    try {
      const result = await this.dynamo.send(
        new UpdateItemCommand({
          TableName: this.table,
          Key: { [LEDGER_KEY]: { S: id } },
          UpdateExpression: 'SET #lease = :until, #owner = :owner, #ttl = :ttl, #attempts = if_not_exists(#attempts, :zero) + :one',
          ConditionExpression: 'attribute_not_exists(#done) AND (attribute_not_exists(#lease) OR #lease < :now)',
          ExpressionAttributeNames: { '#lease': 'leaseUntil', '#owner': OWNER_ATTRIBUTE, '#ttl': LEDGER_TTL_ATTRIBUTE, '#attempts': 'attempts', '#done': 'doneAt' },
          ExpressionAttributeValues: {
            ':until': { N: String(now + leaseMs) },
            ':owner': { S: owner },
            ':now': { N: String(now) },
            ':ttl': { N: String(Math.floor(now / 1000) + this.retentionSeconds) },
            ':zero': { N: '0' },
            ':one': { N: '1' },
          },
          ReturnValues: 'ALL_NEW',
        }),
      );
      const item = result.Attributes ?? {};
      const pendingRcpts = parseJson<string[]>(item.pendingRcpts?.S);
      return {
        status: 'claimed',
        owner,
        deliveredRcpts: item.deliveredRcpts?.SS ?? [],
        ...(pendingRcpts ? { pendingRcpts } : {}),
        attempts: Number(item.attempts?.N ?? '1'),
        refused: parseJson<RecipientReply[]>(item.refusedRcpts?.S) ?? [],
        history: eventsOf(item),
        noticedTo: item[NOTICED_ATTRIBUTE.undeliverable]?.SS ?? [],
        delayNoticedTo: item[NOTICED_ATTRIBUTE.delayed]?.SS ?? [],
      };
    } catch (error) {
      if (!(error instanceof ConditionalCheckFailedException)) {
        throw error;
      }
      const item = await this.dynamo.send(new GetItemCommand({ TableName: this.table, Key: { [LEDGER_KEY]: { S: id } }, ConsistentRead: true }));
      return item.Item?.doneAt ? { status: 'done' } : { status: 'busy' };
    }
  }

  /**
   * Moves the lease's end to `until` while `owner` still holds it (the heartbeat).
   * @throws LeaseLostError when another claim took the message over
   */
  async extendLease(id: string, owner: string, until: number): Promise<void> {
    await this.asOwner(id, owner, {
      UpdateExpression: 'SET #lease = :until',
      ExpressionAttributeNames: { '#lease': 'leaseUntil' },
      ExpressionAttributeValues: { ':until': { N: String(until) } },
    });
  }

  /** An update that applies only while `owner` holds the lease. */
  private async asOwner(
    id: string,
    owner: string,
    update: { UpdateExpression: string; ExpressionAttributeNames?: Record<string, string>; ExpressionAttributeValues?: Record<string, AttributeValue> },
  ): Promise<void> {
    try {
      await this.dynamo.send(
        new UpdateItemCommand({
          TableName: this.table,
          Key: { [LEDGER_KEY]: { S: id } },
          ...update,
          ConditionExpression: '#owner = :owner',
          ExpressionAttributeNames: { ...update.ExpressionAttributeNames, '#owner': OWNER_ATTRIBUTE },
          ExpressionAttributeValues: { ...update.ExpressionAttributeValues, ':owner': { S: owner } },
        }),
      );
    } catch (error) {
      if (error instanceof ConditionalCheckFailedException) throw new LeaseLostError(id);
      throw error;
    }
  }

  /** Records recipients the upstream accepted, before anything else can go wrong. */
  async recordDelivered(id: string, rcpts: string[]): Promise<void> {
    if (rcpts.length === 0) {
      return;
    }
    await this.dynamo.send(
      new UpdateItemCommand({
        TableName: this.table,
        Key: { [LEDGER_KEY]: { S: id } },
        UpdateExpression: 'ADD deliveredRcpts :rcpts',
        ExpressionAttributeValues: { ':rcpts': { SS: [...new Set(rcpts)] } },
      }),
    );
  }

  /**
   * Records a settled attempt while `owner` holds the claim: the message's history (bounded to
   * LEDGER_HISTORY_EVENTS: the first and the latest), the recipients refused so far and those
   * still owed the message.
   * @throws LeaseLostError when another claim took the message over: this attempt settles nothing
   */
  async recordSettlement(id: string, owner: string, settlement: { history: DeliveryEvent[]; refused: RecipientReply[]; pending: string[] }): Promise<void> {
    await this.asOwner(id, owner, {
      UpdateExpression: 'SET #history = :history, refusedRcpts = :refused, pendingRcpts = :pending',
      ExpressionAttributeNames: { '#history': HISTORY_ATTRIBUTE },
      ExpressionAttributeValues: {
        ':history': { L: boundedHistory(settlement.history).map((event) => ({ S: JSON.stringify(event) })) },
        ':refused': { S: JSON.stringify(settlement.refused) },
        ':pending': { S: JSON.stringify(settlement.pending) },
      },
    });
  }

  /**
   * Adds one event without holding the claim (an operator's action): appended atomically; the
   * next settled attempt bounds the list again.
   */
  async appendEvent(event: DeliveryEvent): Promise<void> {
    await this.dynamo.send(
      new UpdateItemCommand({
        TableName: this.table,
        Key: { [LEDGER_KEY]: { S: event.messageId } },
        UpdateExpression: 'SET #history = list_append(if_not_exists(#history, :none), :event)',
        ExpressionAttributeNames: { '#history': HISTORY_ATTRIBUTE },
        ExpressionAttributeValues: { ':none': { L: [] }, ':event': { L: [{ S: JSON.stringify(event) }] } },
      }),
    );
  }

  /**
   * A failure notice about the message went to `event.to` (`sent`), or could not: the event joins
   * the history, and a sent one's address the set a later redelivery checks, in one write.
   */
  async recordNotice(event: NoticeEvent): Promise<void> {
    await this.dynamo.send(
      new UpdateItemCommand({
        TableName: this.table,
        Key: { [LEDGER_KEY]: { S: event.messageId } },
        UpdateExpression: `SET #history = list_append(if_not_exists(#history, :none), :event)${event.sent ? ' ADD #noticed :to' : ''}`,
        ExpressionAttributeNames: { '#history': HISTORY_ATTRIBUTE, ...(event.sent ? { '#noticed': NOTICED_ATTRIBUTE[event.kind ?? 'undeliverable'] } : {}) },
        ExpressionAttributeValues: {
          ':none': { L: [] },
          ':event': { L: [{ S: JSON.stringify(event) }] },
          ...(event.sent ? { ':to': { SS: [event.to.toLowerCase()] } } : {}),
        },
      }),
    );
  }

  /** The message's history as the ledger keeps it (`smarthost trace`); empty for an unknown id. */
  async readHistory(id: string): Promise<DeliveryEvent[]> {
    const { Item } = await this.dynamo.send(new GetItemCommand({ TableName: this.table, Key: { [LEDGER_KEY]: { S: id } }, ConsistentRead: true }));
    return Item ? eventsOf(Item) : [];
  }

  /** Every recipient has the message: later redeliveries are skipped. */
  async markDone(id: string, now = Date.now()): Promise<void> {
    await this.dynamo.send(
      new UpdateItemCommand({
        TableName: this.table,
        Key: { [LEDGER_KEY]: { S: id } },
        UpdateExpression: 'SET doneAt = :now REMOVE leaseUntil, leaseOwner',
        ExpressionAttributeValues: { ':now': { N: String(now) } },
      }),
    );
  }

  /**
   * Gives the message up for another attempt (retry or dead-letter), keeping its progress; only
   * while `owner` holds the lease (a lapsed claim must not free another invocation's). With
   * `notAnAttempt`, the claim is not counted: nothing was submitted (the body could not be read).
   * @returns false when the lease was no longer `owner`'s
   */
  async release(id: string, owner: string, options: { notAnAttempt?: boolean } = {}): Promise<boolean> {
    try {
      await this.asOwner(id, owner, {
        UpdateExpression: options.notAnAttempt ? 'REMOVE leaseUntil, #owner ADD attempts :minusOne' : 'REMOVE leaseUntil, #owner',
        ...(options.notAnAttempt ? { ExpressionAttributeValues: { ':minusOne': { N: '-1' } } } : {}),
      });
      return true;
    } catch (error) {
      if (error instanceof LeaseLostError) return false;
      throw error;
    }
  }
}

/** The cloud's DeliveryHistoryStore: the events in the message's ledger item. */
export class LedgerHistory implements DeliveryHistoryStore {
  constructor(private readonly ledger: DeliveryLedger) {}

  append(event: DeliveryEvent): Promise<void> {
    return this.ledger.appendEvent(event);
  }

  read(messageId: string): Promise<DeliveryEvent[]> {
    return this.ledger.readHistory(messageId);
  }
}
