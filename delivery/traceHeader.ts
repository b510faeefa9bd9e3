import { isIPv4, isIPv6 } from 'node:net';
import { Readable } from 'node:stream';
import type { MessageEnvelope } from '../contract/messageEnvelope.ts';

/** Who the relay says it is in its trace line ("by"). */
const RELAY_NAME = 'smarthost';

/**
 * The Received: field the relay puts on top of a message it forwards (RFC 5321 section 4.4: a
 * relay MUST add one). It names what the device said in HELO/EHLO, the device's address, the
 * relay, the message id (the one in the agent's log and `smarthost show`) and when the relay
 * accepted the message, so a message trace in Exchange Online leads back to the device and the
 * agent's log. No recipients: a "for" clause would show Bcc recipients to everyone.
 *
 * Built from the envelope, not at intake: the spool keeps the bytes exactly as the device sent
 * them (their SHA-256 is in the envelope), and every delivery path adds the same line.
 */
export function traceHeader(envelope: Pick<MessageEnvelope, 'id' | 'helo' | 'client' | 'receivedAt'>): Buffer {
  const from = `from ${heloText(envelope.helo)} (${addressLiteral(envelope.client.ip)})`;
  const by = `by ${RELAY_NAME} id ${envelope.id}`;
  const date = rfc5322Date(new Date(envelope.receivedAt));
  // Folded before "by" and before the date: each line stays short whatever the HELO name was.
  return Buffer.from(`Received: ${from}\r\n\t${by};\r\n\t${date}\r\n`, 'latin1');
}

/** RFC 5322 date-time in UTC: `Thu, 03 Dec 2026 19:53:50 +0000`. */
export function rfc5322Date(date: Date): string {
  return date.toUTCString().replace(/GMT$/, '+0000');
}

/** The message with the trace field on top. */
export function withTraceHeader(body: AsyncIterable<Buffer>, header: Buffer): Readable {
  return Readable.from(prepend(header, body), { objectMode: false });
}

async function* prepend(header: Buffer, body: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  yield header;
  yield* body;
}

/**
 * The HELO name as the device gave it, when it is one token of visible ASCII that cannot break
 * the field's structure (comments, the ";" before the date); otherwise "unknown", as Postfix does.
 */
function heloText(helo: string): string {
  return /^[\x21-\x7e]{1,255}$/.test(helo) && !/[()\\;]/.test(helo) ? helo : 'unknown';
}

/** RFC 5321 address literal: [192.0.2.1] or [IPv6:2001:db8::1]; an IPv4-mapped address as IPv4. */
function addressLiteral(ip: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  if (mapped && isIPv4(mapped[1]!)) return `[${mapped[1]}]`;
  if (isIPv4(ip)) return `[${ip}]`;
  if (isIPv6(ip)) return `[IPv6:${ip}]`;
  return 'unknown';
}
