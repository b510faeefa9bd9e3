import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { RawSmtpClient } from '../../../testbed/helpers/rawSmtpClient.ts';

/** The reply that DATA gets once a message is durable; group 1 is the message id. */
export const QUEUED = /^250 2\.0\.0 Ok: queued as ([A-Za-z0-9_-]{8,64})$/;

/** HELP is answered with 214, a code no step of a mail transaction uses: a marker in a reply stream. */
export const HELP_REPLY = '214 See https://tools.ietf.org/html/rfc5321 for details';

/** Opens a raw session, checks the 220 greeting and says EHLO. */
export async function openSession(port: number, options: { localAddress?: string; helo?: string } = {}): Promise<RawSmtpClient> {
  const client = await RawSmtpClient.open(port, options.localAddress);
  const [greeting] = await client.read(1);
  assert.match(greeting ?? '', /^220 /);
  assert.match(await client.command(`EHLO ${options.helo ?? 'device.test'}`), /^250 /);
  return client;
}

/** Ends a session politely and waits for the server to close it. */
export async function quit(client: RawSmtpClient): Promise<void> {
  if (client.isClosed) {
    return;
  }
  const closed = client.whenClosed();
  assert.equal(await client.command('QUIT'), '221 Bye');
  await closed;
}

/** MAIL FROM, every RCPT TO and DATA, each checked; the session is then in DATA mode. */
export async function startData(client: RawSmtpClient, from: string, to: readonly string[]): Promise<void> {
  assert.equal(await client.command(`MAIL FROM:<${from}>`), '250 Accepted');
  for (const rcpt of to) {
    assert.equal(await client.command(`RCPT TO:<${rcpt}>`), '250 Accepted');
  }
  assert.match(await client.command('DATA'), /^354 /);
}

/**
 * Sends one message (body already dot-stuffed, ending in CRLF) and returns the reply to its
 * end of data.
 */
export async function sendMessage(client: RawSmtpClient, from: string, to: readonly string[], body: Buffer | string): Promise<string> {
  await startData(client, from, to);
  client.write(body);
  client.write('.\r\n');
  const [reply] = await client.read(1);
  return reply ?? '';
}

/** Reads replies until `last` (inclusive) and returns those before it. */
export async function repliesUntil(client: RawSmtpClient, last: string): Promise<string[]> {
  const seen: string[] = [];
  for (;;) {
    const [reply] = await client.read(1);
    if (reply === last) {
      return seen;
    }
    seen.push(reply ?? '');
  }
}

/** The id in a "queued as" reply (fails the test when the reply is anything else). */
export function queuedId(reply: string): string {
  const match = QUEUED.exec(reply);
  assert.ok(match?.[1], `expected "250 2.0.0 Ok: queued as <id>", got ${JSON.stringify(reply)}`);
  return match[1];
}

/**
 * The greeting and every line of the EHLO reply (code and separator stripped), for checking
 * which extensions are advertised; RawSmtpClient keeps only the last line of a multi-line reply.
 */
export async function ehloCapabilities(port: number, localAddress?: string): Promise<{ greeting: string; lines: string[] }> {
  const socket = connect({ host: '127.0.0.1', port, localAddress });
  socket.setEncoding('latin1');
  let buffer = '';
  const lines: string[] = [];
  const next = (): Promise<string> =>
    new Promise((resolve, reject) => {
      const take = (): boolean => {
        const at = buffer.indexOf('\r\n');
        if (at === -1) return false;
        const line = buffer.slice(0, at);
        buffer = buffer.slice(at + 2);
        socket.off('data', onData);
        socket.off('close', onClose);
        resolve(line);
        return true;
      };
      const onData = (chunk: string): void => {
        buffer += chunk;
        take();
      };
      const onClose = (): void => reject(new Error(`closed before a full reply; buffered ${JSON.stringify(buffer)}`));
      if (!take()) {
        socket.on('data', onData);
        socket.once('close', onClose);
      }
    });
  try {
    const greeting = await next();
    socket.write('EHLO device.test\r\n');
    for (;;) {
      const line = await next();
      assert.match(line, /^250[- ]/);
      lines.push(line.slice(4));
      if (line[3] === ' ') break;
    }
    return { greeting, lines };
  } finally {
    socket.destroy();
  }
}
