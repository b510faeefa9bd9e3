import type { AcceptedEvent, DeliveryEvent } from '../../delivery/history/deliveryEvent.ts';
import { arrivalOf } from './messageId.ts';
import type { Spool } from './spool.ts';
import { acceptedEvent, type SpoolHistory } from './spoolHistory.ts';

/** What `smarthost trace` searches by; every given field must match (case-insensitive, part of the text). */
export interface TraceQuery {
  /** The Message-ID header field, with or without its angle brackets. */
  headerMessageId?: string;
  /** MAIL FROM or the send-as address. */
  from?: string;
  /** One of the recipients. */
  to?: string;
  /** Only messages received at or after this time (ms since the epoch). */
  since?: number;
}

export interface TraceMatch {
  accepted: AcceptedEvent;
  where: 'queue' | 'failed' | 'history';
  events: DeliveryEvent[];
}

function has(text: string | undefined, part: string | undefined): boolean {
  return part === undefined || (text !== undefined && text.toLowerCase().includes(part.trim().toLowerCase()));
}

function bare(messageId: string): string {
  return messageId.trim().replace(/^<|>$/g, '');
}

export function matchesQuery(accepted: AcceptedEvent, query: TraceQuery): boolean {
  return (
    (query.since === undefined || Date.parse(accepted.at) >= query.since) &&
    (query.headerMessageId === undefined || has(accepted.headerMessageId, bare(query.headerMessageId))) &&
    (has(accepted.mailFrom, query.from) || has(accepted.sendAs, query.from)) &&
    (query.to === undefined || accepted.rcptTo.some((rcpt) => has(rcpt, query.to)))
  );
}

/**
 * Searches every message the spool still knows: queued, failed, and done within
 * spool.historyRetention. Oldest first. A message's `since` is judged from its id (its arrival)
 * before any file is read.
 */
export async function searchHistory(spool: Spool, history: SpoolHistory, query: TraceQuery): Promise<TraceMatch[]> {
  const recentEnough = (id: string) => query.since === undefined || (arrivalOf(id)?.getTime() ?? Infinity) >= query.since;
  const found: TraceMatch[] = [];
  for (const { envelope } of await spool.listQueued()) {
    const accepted = acceptedEvent(envelope);
    if (matchesQuery(accepted, query)) found.push({ accepted, where: 'queue', events: await history.read(envelope.id) });
  }
  for (const { envelope } of await spool.listFailed()) {
    const accepted = acceptedEvent(envelope);
    if (matchesQuery(accepted, query)) found.push({ accepted, where: 'failed', events: await history.read(envelope.id) });
  }
  const seen = new Set(found.map((m) => m.accepted.messageId));
  for (const id of (await history.archivedIds()).filter((i) => !seen.has(i) && recentEnough(i))) {
    const events = await history.read(id);
    const accepted = events.find((e): e is AcceptedEvent => e.type === 'accepted');
    if (accepted && matchesQuery(accepted, query)) found.push({ accepted, where: 'history', events });
  }
  return found.sort((a, b) => (a.accepted.messageId < b.accepted.messageId ? -1 : 1));
}

/** Where the message stands, in a few words: who has it and when, or what it waits for. */
export function outcomeOf(match: TraceMatch): string {
  const attempts = match.events.filter((e) => e.type === 'attempt');
  const delivered = attempts.flatMap((e) => e.accepted.map((rcpt) => `${rcpt} at ${e.at}`));
  const last = attempts.at(-1);
  const deleted = match.events.find((e) => e.type === 'operator' && e.action === 'delete');
  const parts: string[] = [];
  if (delivered.length > 0) parts.push(`delivered to ${delivered.join(', ')}`);
  if (deleted) parts.push(`deleted by ${deleted.type === 'operator' ? deleted.by : ''} at ${deleted.at}`);
  else if (match.where === 'failed') parts.push(`failed${last?.reply ? `: ${last.reply}` : ''}`);
  else if (match.where === 'queue') {
    if (!last) parts.push('queued, not tried yet');
    else if (last.decision.action === 'hold') parts.push(`held for the operator: ${last.reply ?? ''}${last.operatorAction ? `; fix: ${last.operatorAction}` : ''}`);
    else parts.push(`queued, ${last.decision.action === 'retry' ? `retry at ${last.decision.at}` : 'next attempt soon'}${last.reply ? ` (last reply: ${last.reply})` : ''}`);
  } else if (delivered.length === 0) parts.push(match.events.some((e) => e.type === 'handed-over') ? 'handed over to the cloud queue' : 'done');
  return parts.join('; ');
}
