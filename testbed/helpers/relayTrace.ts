import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { findHeaderSection } from '../../delivery/headerSection.ts';

/**
 * Separates what smarthost adds to a message it forwards from what the device sent: the
 * Received: field on top (delivery/traceHeader.ts) and the From / Date / Message-ID it appends
 * to a header section that lacks them (delivery/sendAsRewrite.ts, as Postfix's cleanup does).
 * `trace` is undefined when the first field is not smarthost's; `added` lists the appended fields.
 * The appended ones are recognised by what only the relay writes: a Message-ID with the trace's
 * id, a Date equal to the trace's, and `From: <envelopeFrom>` when no other From remains. A
 * device field taken for the relay's makes a comparison fail; none can make one pass wrongly.
 */
export function splitRelayTrace(raw: Buffer, envelopeFrom?: string): { trace: string | undefined; added: string[]; message: Buffer } {
  if (raw.subarray(0, 10).toString('latin1') !== 'Received: ') return { trace: undefined, added: [], message: raw };
  // The field runs to the first line end not followed by folding whitespace.
  let end = raw.indexOf('\r\n');
  while (end !== -1 && (raw[end + 2] === 0x09 || raw[end + 2] === 0x20)) end = raw.indexOf('\r\n', end + 2);
  const field = end === -1 ? '' : raw.subarray(0, end + 2).toString('latin1');
  const traced = /\sby smarthost id ([A-Za-z0-9_-]+);\r\n\t(.+)\r\n$/.exec(field);
  if (!traced) return { trace: undefined, added: [], message: raw };
  const rest = raw.subarray(end + 2);
  const section = findHeaderSection(rest);
  const lines = rest.subarray(0, section.fieldsEnd).toString('latin1').split(/(?<=\r\n)(?![ \t])/).filter((line) => line !== '');
  const added: string[] = [];
  const takeLast = (test: (line: string) => boolean): void => {
    const last = lines[lines.length - 1];
    if (last !== undefined && test(last)) added.unshift(lines.pop() as string);
  };
  takeLast((line) => line.startsWith(`Message-ID: <${traced[1]}@`));
  takeLast((line) => line === `Date: ${traced[2]}\r\n`);
  takeLast((line) => envelopeFrom !== undefined && line === `From: ${envelopeFrom}\r\n` && !lines.slice(0, -1).some((other) => /^from[ \t]*:/i.test(other)));
  if (added.length === 0) return { trace: field, added, message: rest };
  // A header the relay had to build from nothing: its blank line is the relay's too.
  const below = lines.length === 0 ? rest.subarray(section.bodyStart) : Buffer.concat([Buffer.from(lines.join(''), 'latin1'), rest.subarray(section.fieldsEnd)]);
  return { trace: field, added, message: below };
}

/**
 * A message the agent wrote to its outbox (the embedded default's stand-in for delivery), checked
 * to start with the relay's trace field for that message id, and returned without it.
 */
export async function readOutboxMessage(outboxDir: string, id: string): Promise<Buffer> {
  const written = JSON.parse(await readFile(join(outboxDir, `${id}.envelope.json`), 'utf8')) as { mailFrom: string };
  const { trace, message } = splitRelayTrace(await readFile(join(outboxDir, `${id}.eml`)), written.mailFrom);
  assert.match(trace ?? '(none)', new RegExp(`^Received: from .+\\r\\n\\tby smarthost id ${id};\\r\\n\\t\\w{3}, \\d{2} \\w{3} \\d{4} \\d{2}:\\d{2}:\\d{2} \\+0000\\r\\n$`), `trace field of ${id}`);
  return message;
}
