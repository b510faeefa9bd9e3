import type { Server } from 'node:http';
import { createRequire } from 'node:module';
import { CreateTableCommand, DescribeTableCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { LEDGER_KEY } from '../../contract/cloudResources.ts';
import { TEST_CREDENTIALS, TEST_REGION } from './awsTestEnv.ts';
import { closeNow, listenOnLoopback, loopbackUrl } from './loopbackServer.ts';

/**
 * DynamoDB stand-in: dynalite in this process on 127.0.0.1, in memory, with the delivery ledger
 * table (partition key LEDGER_KEY, a string), ACTIVE before this resolves.
 */

/** The part of dynalite's API used here (the package ships no types). */
type Dynalite = (options: { createTableMs?: number; deleteTableMs?: number; updateTableMs?: number }) => Server;
const dynalite = createRequire(import.meta.url)('dynalite') as Dynalite;

export interface LocalDynamoOptions {
  /** @default 'smarthost-ledger' */
  tableName?: string;
}

export interface LocalDynamo {
  /** http://127.0.0.1:PORT */
  readonly endpoint: string;
  readonly tableName: string;
  /** Explicit endpoint, region and static credentials. */
  readonly client: DynamoDBClient;
  /** Stops the server (the data goes with it) and releases the client's sockets. */
  stop(): Promise<void>;
}

export async function startLocalDynamo(options: LocalDynamoOptions = {}): Promise<LocalDynamo> {
  const tableName = options.tableName ?? 'smarthost-ledger';
  // No path: in memory. Tables go ACTIVE on the next tick instead of after 500 ms.
  const server = dynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
  const port = await listenOnLoopback(server);
  const endpoint = loopbackUrl(port);
  const client = new DynamoDBClient({ endpoint, region: TEST_REGION, credentials: TEST_CREDENTIALS });
  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    client.destroy();
    await closeNow(server);
  };
  try {
    await client.send(
      new CreateTableCommand({
        TableName: tableName,
        AttributeDefinitions: [{ AttributeName: LEDGER_KEY, AttributeType: 'S' }],
        KeySchema: [{ AttributeName: LEDGER_KEY, KeyType: 'HASH' }],
        BillingMode: 'PAY_PER_REQUEST',
      }),
    );
    await waitUntilActive(client, tableName);
  } catch (error) {
    await stop();
    throw error;
  }
  return { endpoint, tableName, client, stop };
}

/**
 * dynalite flips CREATING → ACTIVE on a zero timer, which has fired by the time a DescribeTable
 * round trip is back: one or two calls, no waiting in between.
 */
async function waitUntilActive(client: DynamoDBClient, tableName: string): Promise<void> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const { Table } = await client.send(new DescribeTableCommand({ TableName: tableName }));
    if (Table?.TableStatus === 'ACTIVE') return;
  }
  throw new Error(`dynalite table ${tableName} did not become ACTIVE`);
}
