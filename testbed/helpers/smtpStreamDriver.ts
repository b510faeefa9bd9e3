import { once } from 'node:events';
import { SMTPStream } from 'smtp-server/lib/smtp-stream.js';

/** What smtp-server's parser made of an input: per DATA command the body, and the command lines. */
export interface ParsedSession {
  /** One per DATA command: the body as the data stream delivered it, and whether it ended. */
  bodies: { body: string; ended: boolean; byteLength: number }[];
  commands: string[];
}

/**
 * Runs smtp-server's command/DATA parser alone, with `feed` as its DATA method, over `chunks`
 * as if they arrived from a socket: the differential test of the DATA scanner and its benchmark
 * drive both versions through this. `keepBodies: false` counts bytes only (for the benchmark).
 */
export async function parseWith(feed: SMTPStream['_feedDataStream'], chunks: readonly Buffer[], keepBodies = true): Promise<ParsedSession> {
  const parser = new SMTPStream();
  parser._feedDataStream = feed;
  const outcome: ParsedSession = { bodies: [], commands: [] };
  parser.oncommand = (command, next) => {
    const line = command.toString('binary');
    outcome.commands.push(line);
    if (line.toUpperCase() === 'DATA') {
      const record = { body: '', ended: false, byteLength: 0 };
      outcome.bodies.push(record);
      const stream = parser.startDataMode();
      stream.on('data', (piece: Buffer) => {
        if (keepBodies) record.body += piece.toString('binary');
      });
      stream.on('end', () => {
        record.ended = true;
        record.byteLength = stream.byteLength;
        // As smtp-connection does: after the reply, never from inside the parser's own call.
        setImmediate(() => parser.continue());
      });
    }
    next?.();
  };
  // Writable emits 'finish' synchronously in end() when every write completed synchronously.
  const finished = once(parser, 'finish');
  for (const chunk of chunks) parser.write(chunk);
  parser.end();
  await finished;
  // Let a data stream's last 'data' and 'end' events arrive.
  await new Promise((resolve) => setImmediate(resolve));
  return outcome;
}
