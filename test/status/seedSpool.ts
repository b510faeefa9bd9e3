import { createHash } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { MessageEnvelope } from '../../contract/messageEnvelope.ts';
import type { AttemptEvent, DeliveryEvent } from '../../delivery/history/deliveryEvent.ts';
import { newMessageId } from '../../edge-agent/spool/messageId.ts';
import { envelopeTrailer } from '../../edge-agent/spool/spoolFile.ts';
import type { DeliveryState, FailureRecord } from '../../edge-agent/spool/spool.ts';

export interface SeededSpool {
  retrying: MessageEnvelope;
  held: MessageEnvelope;
  failed: MessageEnvelope;
}

export const HELD_FIX = 'Add-RecipientPermission -Identity fax@contoso.com -AccessRights SendAs -Trustee relay@contoso.com (Exchange Online PowerShell)';
export const HELD_REPLY = '550 5.7.60 SMTP; Client does not have permissions to send as this sender';
export const RETRY_REPLY = '451 4.3.0 Temporary server error. Please try again later';
export const FAILED_REPLY = '550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup';

function message(subject: string, from: string, to: string, id: string): Buffer {
  return Buffer.from(`From: ${from}\r\nTo: ${to}\r\nSubject: ${subject}\r\nDate: Thu, 03 Dec 2026 09:05:00 +0000\r\nMessage-ID: <${id}>\r\n\r\nThe scanned document is attached.\r\n`);
}

function envelopeOf(at: Date, client: { name: string; ip: string }, mailFrom: string, rcptTo: string[], body: Buffer, sendAs?: string): MessageEnvelope {
  const envelope: MessageEnvelope = { client, helo: `${client.name}.office.lan`, mailFrom, rcptTo, id: newMessageId(at), receivedAt: at.toISOString(), size: body.length, sha256: createHash('sha256').update(body).digest('hex') };
  if (sendAs) envelope.sendAs = sendAs;
  return envelope;
}

function attempt(envelope: MessageEnvelope, n: number, at: Date, reply: string, kind: AttemptEvent['kind'], decision: AttemptEvent['decision'], extra: Partial<AttemptEvent> = {}): AttemptEvent {
  return {
    type: 'attempt',
    messageId: envelope.id,
    at: at.toISOString(),
    attempt: n,
    route: 'smtp smtp.office365.com:587',
    mailbox: 'relay@contoso.com',
    startedAt: new Date(at.getTime() - 700).toISOString(),
    durationMs: 700,
    accepted: [],
    refused: decision.action === 'give-up' ? envelope.rcptTo.map((rcpt) => ({ rcpt, reply, kind: 'permanent' as const })) : [],
    deferred: decision.action === 'give-up' ? [] : envelope.rcptTo.map((rcpt) => ({ rcpt, reply, kind: kind ?? 'transient' })),
    reply,
    kind,
    decision,
    ...extra,
  };
}

const jsonl = (events: DeliveryEvent[]) => events.map((e) => JSON.stringify(e)).join('\n') + '\n';

/**
 * A spool as an office box might have it: a scan waiting for a retry, a fax held because the
 * relay mailbox may not send as its address, and a report to a mistyped recipient that failed.
 */
export async function seedSpool(spoolDir: string, now = Date.now()): Promise<SeededSpool> {
  const queue = join(spoolDir, 'queue');
  const failedDir = join(spoolDir, 'failed');
  await mkdir(queue, { recursive: true });
  await mkdir(failedDir, { recursive: true });
  const minutes = (n: number) => new Date(now + n * 60_000);

  const scanBody = message('Scan from MFP 2nd floor', 'scanner@contoso.com', 'alice@contoso.com', 'scan-0905@mfp2f');
  const retrying = envelopeOf(minutes(-20), { name: 'scanner-2f', ip: '10.100.102.20' }, 'scanner@contoso.com', ['alice@contoso.com'], scanBody);
  const retryAt = minutes(10).toISOString();
  await writeFile(join(queue, `${retrying.id}.msg`), Buffer.concat([scanBody, envelopeTrailer(retrying)]));
  const retryState: DeliveryState = { attempts: 1, nextAttemptAt: retryAt, lastError: RETRY_REPLY, pendingRcpts: ['alice@contoso.com'], deliveredRcpts: [], rejectedRcpts: [] };
  await writeFile(join(queue, `${retrying.id}.state.json`), JSON.stringify(retryState));
  await writeFile(join(queue, `${retrying.id}.history.jsonl`), jsonl([attempt(retrying, 1, minutes(-19), RETRY_REPLY, 'transient', { action: 'retry', at: retryAt }, { reason: 'Exchange Online had a temporary problem' })]));

  const faxBody = message('Fax from +49 30 1234567', 'fax@printer.local', 'bob@contoso.com', 'fax-0910@fax');
  const held = envelopeOf(minutes(-15), { name: 'fax', ip: '10.100.102.3' }, 'fax@printer.local', ['bob@contoso.com'], faxBody, 'fax@contoso.com');
  const holdAt = minutes(230).toISOString();
  await writeFile(join(queue, `${held.id}.msg`), Buffer.concat([faxBody, envelopeTrailer(held)]));
  const heldState: DeliveryState = { attempts: 2, nextAttemptAt: holdAt, lastError: HELD_REPLY, operatorAction: HELD_FIX, pendingRcpts: ['bob@contoso.com'], deliveredRcpts: [], rejectedRcpts: [] };
  await writeFile(join(queue, `${held.id}.state.json`), JSON.stringify(heldState));
  const holdReason = 'the relay mailbox may not send as fax@contoso.com';
  await writeFile(
    join(queue, `${held.id}.history.jsonl`),
    jsonl([
      attempt(held, 1, minutes(-14), HELD_REPLY, 'config', { action: 'hold', at: minutes(-10).toISOString() }, { reason: holdReason, operatorAction: HELD_FIX }),
      attempt(held, 2, minutes(-10), HELD_REPLY, 'config', { action: 'hold', at: holdAt }, { reason: holdReason, operatorAction: HELD_FIX }),
    ]),
  );

  const reportBody = message('UPS on battery', 'ups@contoso.com', 'it-alerts@contoso.com', 'ups-0801@ups');
  const failed = envelopeOf(minutes(-60), { name: 'ups', ip: '10.100.102.9' }, 'ups@contoso.com', ['it-alrets@contoso.com'], reportBody);
  await writeFile(join(failedDir, `${failed.id}.msg`), Buffer.concat([reportBody, envelopeTrailer(failed)]));
  const failure: FailureRecord = {
    failedAt: minutes(-59).toISOString(),
    reason: 'some recipients were refused',
    reply: FAILED_REPLY,
    state: { attempts: 1, pendingRcpts: ['it-alrets@contoso.com'], deliveredRcpts: [], rejectedRcpts: [{ rcpt: 'it-alrets@contoso.com', reply: FAILED_REPLY }] },
  };
  await writeFile(join(failedDir, `${failed.id}.failure.json`), JSON.stringify(failure));
  await writeFile(join(failedDir, `${failed.id}.history.jsonl`), jsonl([attempt(failed, 1, minutes(-59), FAILED_REPLY, 'permanent', { action: 'give-up', reason: 'some recipients were refused' })]));
  return { retrying, held, failed };
}
