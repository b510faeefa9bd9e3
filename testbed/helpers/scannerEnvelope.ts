import { createHash } from 'node:crypto';
import type { MessageEnvelope } from '../../contract/messageEnvelope.ts';

export const sha256Hex = (bytes: Buffer | string): string => createHash('sha256').update(bytes).digest('hex');

/**
 * The envelope the agent would write for `body` from the office scanner (192.0.2.10, MAIL FROM
 * scanner@contoso.com to you@contoso.com), size and digest computed; `fields` replace any of it.
 */
export function scannerEnvelope(id: string, body: Buffer, fields: Partial<MessageEnvelope> = {}): MessageEnvelope {
  return {
    id,
    receivedAt: new Date().toISOString(),
    client: { name: 'scanner', ip: '192.0.2.10' },
    helo: 'scanner.local',
    mailFrom: 'scanner@contoso.com',
    rcptTo: ['you@contoso.com'],
    size: body.length,
    sha256: sha256Hex(body),
    ...fields,
  };
}
