import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * Separates the Received: field smarthost puts on top of what it forwards (delivery/traceHeader.ts)
 * from the message below it, which is what the device sent. `trace` is undefined when the first
 * field is not smarthost's.
 */
export function splitRelayTrace(raw: Buffer): { trace: string | undefined; message: Buffer } {
  if (raw.subarray(0, 10).toString('latin1') !== 'Received: ') return { trace: undefined, message: raw };
  // The field runs to the first line end not followed by folding whitespace.
  let end = raw.indexOf('\r\n');
  while (end !== -1 && (raw[end + 2] === 0x09 || raw[end + 2] === 0x20)) end = raw.indexOf('\r\n', end + 2);
  const field = end === -1 ? '' : raw.subarray(0, end + 2).toString('latin1');
  if (!/\sby smarthost id /.test(field)) return { trace: undefined, message: raw };
  return { trace: field, message: raw.subarray(end + 2) };
}

/**
 * A message the agent wrote to its outbox (the embedded default's stand-in for delivery), checked
 * to start with the relay's trace field for that message id, and returned without it.
 */
export async function readOutboxMessage(outboxDir: string, id: string): Promise<Buffer> {
  const { trace, message } = splitRelayTrace(await readFile(join(outboxDir, `${id}.eml`)));
  assert.match(trace ?? '(none)', new RegExp(`^Received: from .+\\r\\n\\tby smarthost id ${id};\\r\\n\\t\\w{3}, \\d{2} \\w{3} \\d{4} \\d{2}:\\d{2}:\\d{2} \\+0000\\r\\n$`), `trace field of ${id}`);
  return message;
}
