import type { Writable } from 'node:stream';
import type { DeliveryEvent } from '../delivery/history/deliveryEvent.ts';
import type { AgentConfig } from '../edge-agent/config/agentConfigSchema.ts';
import { Spool } from '../edge-agent/spool/spool.ts';
import { spoolHistory } from '../edge-agent/spool/spoolHistory.ts';

/** Reads a message's cloud history (the ledger); replaced in tests. */
export type LedgerReader = (table: string, region: string | undefined, id: string) => Promise<DeliveryEvent[]>;

async function readLedger(table: string, region: string | undefined, id: string): Promise<DeliveryEvent[]> {
  // Loaded only here: a local relay never loads the AWS SDK.
  const [{ DynamoDBClient }, { DeliveryLedger, LedgerHistory }] = await Promise.all([import('@aws-sdk/client-dynamodb'), import('../functions/queue-delivery/deliveryLedger.ts')]);
  const dynamo = new DynamoDBClient(region ? { region } : {});
  try {
    return await new LedgerHistory(new DeliveryLedger(dynamo, table)).read(id);
  } finally {
    dynamo.destroy();
  }
}

/**
 * `smarthost trace ID`: the message's history from acceptance to its last attempt, one line per
 * event. The spool's part always (embedded: everything; cloud mode: accepted and handed over),
 * and in cloud mode the ledger's attempts when queue.sqs.ledgerTable is set and the credentials
 * allow reading it. Exit code 1 when nothing at all is known about the id.
 */
export async function trace(config: AgentConfig, id: string | undefined, out: Writable, err: Writable, ledger: LedgerReader = readLedger): Promise<number> {
  if (!id) {
    err.write('trace needs a message id (see `smarthost queue`, or the messageId field of the logs).\n');
    return 2;
  }
  const spool = new Spool({ dir: config.spool.dir });
  let events: DeliveryEvent[];
  try {
    events = await spoolHistory(spool, config.spool.dir).read(id);
  } catch (error) {
    err.write(`${id}: ${(error as Error).message}\n`);
    return 1;
  }
  const sqs = config.queue.kind === 'sqs' ? config.queue.sqs : undefined;
  if (sqs) {
    if (!sqs.ledgerTable) {
      err.write('queue.sqs.ledgerTable is not set: only the agent\'s part (accepted, handed over) is shown; set it to see the delivery attempts.\n');
    } else {
      try {
        events.push(...(await ledger(sqs.ledgerTable, sqs.region, id)));
      } catch (error) {
        const e = error as Error;
        err.write(`could not read the delivery ledger ${sqs.ledgerTable} (${e.name}: ${e.message}): only the agent's part is shown; the operator's credentials need dynamodb:GetItem on the table.\n`);
      }
    }
  }
  if (events.length === 0) {
    err.write(`${id}: no history (not a message of this relay, or done longer ago than spool.historyRetention)\n`);
    return 1;
  }
  events.sort((a, b) => Date.parse(a.at) - Date.parse(b.at));
  for (const event of events) {
    out.write(`${traceLine(event)}\n`);
  }
  return 0;
}

/** One event as one line: time, what, the upstream's reply, the decision, the fix. */
export function traceLine(event: DeliveryEvent): string {
  const what = (label: string, text: string) => `${event.at}  ${label.padEnd(11)}  ${text}`;
  switch (event.type) {
    case 'accepted':
      return what('accepted', `from ${event.client.name} (${event.client.ip}), MAIL FROM <${event.mailFrom}>${event.sendAs ? ` sent as ${event.sendAs}` : ''}, to ${event.rcptTo.join(', ')}, ${event.size} bytes`);
    case 'handed-over':
      return what('handed over', `to ${event.queue}, body ${event.bodyInS3 ? 'in S3' : 'inline'}`);
    case 'attempt': {
      const parts = [`#${event.attempt} via ${event.route}${event.mailbox ? ` as ${event.mailbox}` : ''}, ${event.durationMs} ms`];
      if (event.accepted.length > 0) parts.push(`delivered to ${event.accepted.join(', ')}`);
      if (event.refused.length > 0) parts.push(`refused ${event.refused.map((r) => r.rcpt).join(', ')}`);
      if (event.deferred.length > 0) parts.push(`deferred ${event.deferred.map((r) => r.rcpt).join(', ')}`);
      if (event.reply) parts.push(`reply: ${event.reply}${event.kind ? ` (${event.kind})` : ''}`);
      const decision = event.decision;
      parts.push(
        decision.action === 'done'
          ? 'done'
          : decision.action === 'retry'
            ? `retry at ${decision.at}`
            : decision.action === 'hold'
              ? `held for the operator, next try at ${decision.at}`
              : `given up: ${decision.reason}`,
      );
      if (event.operatorAction) parts.push(`fix: ${event.operatorAction}`);
      return what('attempt', parts.join('; '));
    }
    case 'operator':
      return what('operator', `${event.action} by ${event.by}`);
    case 'notice':
      return what('notice', `to ${event.to}: ${event.sent ? 'sent' : 'not sent'}${event.detail ? ` (${event.detail})` : ''}`);
  }
}
