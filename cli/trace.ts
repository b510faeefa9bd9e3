import type { Writable } from 'node:stream';
import type { DeliveryEvent } from '../delivery/history/deliveryEvent.ts';
import { describeEvent } from '../delivery/history/describeEvent.ts';
import type { AgentConfig } from '../edge-agent/config/agentConfigSchema.ts';
import { Spool } from '../edge-agent/spool/spool.ts';
import { spoolHistory } from '../edge-agent/spool/spoolHistory.ts';
import { outcomeOf, searchHistory, type TraceQuery } from '../edge-agent/spool/historySearch.ts';
import { parseDuration } from '../config-toolkit/duration.ts';

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
  const { label, text } = describeEvent(event);
  return `${event.at}  ${label.padEnd(11)}  ${text}`;
}

/** `smarthost trace --message-id X | --from X | --to X [--since 2h]`: which messages, and what became of them. */
export async function traceSearch(config: AgentConfig, query: TraceQuery, out: Writable, err: Writable): Promise<number> {
  const spool = new Spool({ dir: config.spool.dir });
  const matches = await searchHistory(spool, spoolHistory(spool, config.spool.dir), query);
  if (matches.length === 0) {
    err.write(`no message matches (searched the queue, the failed area and the history kept for spool.historyRetention)\n`);
    return 1;
  }
  for (const match of matches) {
    const a = match.accepted;
    out.write(
      `${a.messageId}  ${a.at}  ${a.client.name} (${a.client.ip})  from ${a.sendAs ?? (a.mailFrom || '<>')}  to ${a.rcptTo.join(', ')}${a.headerMessageId ? `  Message-ID ${a.headerMessageId}` : ''}\n` +
        `    ${outcomeOf(match)}\n`,
    );
  }
  out.write(`${matches.length} ${matches.length === 1 ? 'message' : 'messages'}; smarthost trace ID shows one's whole history\n`);
  return 0;
}

/** The search options of `trace`, or a problem to print; undefined fields are not searched. */
export function traceQueryOf(values: { 'message-id'?: string; from?: string; to?: string; since?: string }, now = Date.now()): TraceQuery | string {
  const query: TraceQuery = {};
  if (values['message-id']) query.headerMessageId = values['message-id'];
  if (values.from) query.from = values.from;
  if (values.to) query.to = values.to;
  if (values.since) {
    try {
      query.since = now - parseDuration(values.since);
    } catch {
      return `--since: expected a duration such as 2h, 30m or 3d, got '${values.since}'`;
    }
  }
  return query;
}
