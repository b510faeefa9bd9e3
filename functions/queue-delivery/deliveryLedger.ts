import { ConditionalCheckFailedException, GetItemCommand, UpdateItemCommand, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { LEDGER_KEY, LEDGER_TTL_ATTRIBUTE } from '../../contract/cloudResources.ts';

export type ClaimResult =
  /** This invocation may deliver; these recipients already have the message. */
  | { status: 'claimed'; deliveredRcpts: string[] }
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
    try {
      const result = await this.dynamo.send(
        new UpdateItemCommand({
          TableName: this.table,
          Key: { [LEDGER_KEY]: { S: id } },
          UpdateExpression: 'SET #lease = :until, #ttl = :ttl, #attempts = if_not_exists(#attempts, :zero) + :one',
          ConditionExpression: 'attribute_not_exists(#done) AND (attribute_not_exists(#lease) OR #lease < :now)',
          ExpressionAttributeNames: { '#lease': 'leaseUntil', '#ttl': LEDGER_TTL_ATTRIBUTE, '#attempts': 'attempts', '#done': 'doneAt' },
          ExpressionAttributeValues: {
            ':until': { N: String(now + leaseMs) },
            ':now': { N: String(now) },
            ':ttl': { N: String(Math.floor(now / 1000) + this.retentionSeconds) },
            ':zero': { N: '0' },
            ':one': { N: '1' },
          },
          ReturnValues: 'ALL_NEW',
        }),
      );
      return { status: 'claimed', deliveredRcpts: result.Attributes?.deliveredRcpts?.SS ?? [] };
    } catch (error) {
      if (!(error instanceof ConditionalCheckFailedException)) {
        throw error;
      }
      const item = await this.dynamo.send(new GetItemCommand({ TableName: this.table, Key: { [LEDGER_KEY]: { S: id } }, ConsistentRead: true }));
      return item.Item?.doneAt ? { status: 'done' } : { status: 'busy' };
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

  /** Every recipient has the message: later redeliveries are skipped. */
  async markDone(id: string, now = Date.now()): Promise<void> {
    await this.dynamo.send(
      new UpdateItemCommand({
        TableName: this.table,
        Key: { [LEDGER_KEY]: { S: id } },
        UpdateExpression: 'SET doneAt = :now REMOVE leaseUntil',
        ExpressionAttributeValues: { ':now': { N: String(now) } },
      }),
    );
  }

  /** Gives the message up for another attempt (retry or dead-letter), keeping its progress. */
  async release(id: string): Promise<void> {
    await this.dynamo.send(
      new UpdateItemCommand({
        TableName: this.table,
        Key: { [LEDGER_KEY]: { S: id } },
        UpdateExpression: 'REMOVE leaseUntil',
      }),
    );
  }
}
