import { open } from 'node:fs/promises';
import { join } from 'node:path';
import type { MessageEnvelope } from '../../contract/messageEnvelope.ts';
import type { AcceptedEvent, DeliveryEvent } from '../../delivery/history/deliveryEvent.ts';
import type { DeliveryState, FailureRecord, Spool } from '../spool/spool.ts';

/** Where a message is and what it waits for, as the console's lists show it. */
export type MessageStatus = 'new' | 'retrying' | 'held' | 'failed' | 'done';

export interface MessageRow {
  id: string;
  status: MessageStatus;
  receivedAt: string;
  device: string;
  ip: string;
  /** The sender as delivered: the send-as address when the client has one, else MAIL FROM. */
  sender: string;
  recipients: string[];
  size: number;
  attempts: number;
  lastReply?: string;
  nextAttemptAt?: string;
  reason?: string;
  fix?: string;
}

export interface MessageFilters {
  device?: string;
  sender?: string;
  recipient?: string;
  status?: string;
}

/** Rows a list shows at most; the count above it says how many matched. */
export const LIST_LIMIT = 500;

export const STATUS_LABELS: Record<MessageStatus, string> = {
  new: 'waiting, not tried yet',
  retrying: 'waiting for a retry',
  held: 'held for you',
  failed: 'failed',
  done: 'done',
};

function senderOf(envelope: { sendAs?: string; mailFrom: string }): string {
  return envelope.sendAs ?? (envelope.mailFrom || '<>');
}

export function queuedRow(envelope: MessageEnvelope, state: DeliveryState | undefined): MessageRow {
  return {
    id: envelope.id,
    status: state?.operatorAction ? 'held' : state && state.attempts > 0 ? 'retrying' : 'new',
    receivedAt: envelope.receivedAt,
    device: envelope.client.name,
    ip: envelope.client.ip,
    sender: senderOf(envelope),
    recipients: state?.pendingRcpts ?? envelope.rcptTo,
    size: envelope.size,
    attempts: state?.attempts ?? 0,
    lastReply: state?.lastError,
    nextAttemptAt: state?.nextAttemptAt,
    fix: state?.operatorAction,
  };
}

export function failedRow(envelope: MessageEnvelope, failure: FailureRecord): MessageRow {
  return {
    id: envelope.id,
    status: 'failed',
    receivedAt: envelope.receivedAt,
    device: envelope.client.name,
    ip: envelope.client.ip,
    sender: senderOf(envelope),
    recipients: failure.state.pendingRcpts ?? envelope.rcptTo,
    size: envelope.size,
    attempts: failure.state.attempts,
    lastReply: failure.reply,
    reason: failure.reason,
    fix: failure.operatorAction,
  };
}

function contains(haystack: string, needle: string | undefined): boolean {
  return !needle || haystack.toLowerCase().includes(needle.trim().toLowerCase());
}

export function matches(row: MessageRow, filters: MessageFilters): boolean {
  return (
    (contains(row.device, filters.device) || contains(row.ip, filters.device)) &&
    contains(row.sender, filters.sender) &&
    (!filters.recipient || row.recipients.some((r) => contains(r, filters.recipient))) &&
    (!filters.status || filters.status === 'all' || row.status === filters.status)
  );
}

export async function queuedRows(spool: Spool): Promise<MessageRow[]> {
  return (await spool.listQueued()).map(({ envelope, state }) => queuedRow(envelope, state));
}

export async function failedRows(spool: Spool): Promise<MessageRow[]> {
  return (await spool.listFailed()).map(({ envelope, failure }) => failedRow(envelope, failure));
}

/** Bytes of a message's start read to show its header section; a longer header is cut off there. */
export const HEADER_READ_BYTES = 64 * 1024;

/**
 * The header fields of a queued or failed message (never its body): read from the start of its
 * spool file up to the blank line, unfolded, one [name, value] pair per field.
 */
export async function readHeaderFields(dir: string, id: string, size: number): Promise<{ fields: [string, string][]; cut: boolean }> {
  const handle = await open(join(dir, `${id}.msg`), 'r');
  let text: string;
  try {
    const buffer = Buffer.alloc(Math.min(size, HEADER_READ_BYTES));
    const { bytesRead } = await handle.read(buffer, 0, buffer.length, 0);
    text = buffer.subarray(0, bytesRead).toString('latin1');
  } finally {
    await handle.close();
  }
  const end = text.search(/\r?\n\r?\n/);
  const section = end === -1 ? text : text.slice(0, end);
  const fields: [string, string][] = [];
  for (const line of section.split(/\r?\n/)) {
    if (/^[ \t]/.test(line) && fields.length > 0) {
      const last = fields[fields.length - 1] as [string, string];
      last[1] += ` ${line.trim()}`;
      continue;
    }
    const colon = line.indexOf(':');
    if (colon <= 0) break; // Not a field: the body started without a blank line.
    fields.push([line.slice(0, colon), line.slice(colon + 1).trim()]);
  }
  return { fields, cut: end === -1 && size > HEADER_READ_BYTES };
}

/** A message known only from its history (done, or deleted): its envelope is the accepted event. */
export function acceptedOf(events: DeliveryEvent[]): AcceptedEvent | undefined {
  return events.find((e): e is AcceptedEvent => e.type === 'accepted');
}
