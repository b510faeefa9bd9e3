import { ScanCommand, type AttributeValue, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { LEDGER_KEY } from '../../contract/cloudResources.ts';

/** Agent ids the delivery ledger marks done (every recipient has the message). */
export async function doneInLedger(dynamo: Pick<DynamoDBClient, 'send'>, table: string): Promise<Set<string>> {
  const done = new Set<string>();
  let startKey: Record<string, AttributeValue> | undefined;
  for (let page = 0; page < 1_000; page++) {
    const result = await dynamo.send(new ScanCommand({ TableName: table, ConsistentRead: true, ExclusiveStartKey: startKey }));
    for (const item of result.Items ?? []) {
      const id = item[LEDGER_KEY]?.S;
      if (id && item.doneAt?.N) done.add(id);
    }
    startKey = result.LastEvaluatedKey;
    if (!startKey) return done;
  }
  throw new Error('the ledger scan did not end');
}
