import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect } from 'node:net';
import { hostname } from 'node:os';
import { connect as connectTls } from 'node:tls';
import { caPem } from '../../testbed/fakes/tlsFixtures.ts';
import type { TestAgent } from '../../testbed/helpers/agentHarness.ts';
import { RawSmtpClient } from '../../testbed/helpers/rawSmtpClient.ts';
import { queuedId, quit, sendMessage, startData } from '../intake/helpers/smtpSession.ts';
import { setTimeout as pace } from 'node:timers/promises';
import { pollUntil } from '../../testbed/helpers/pollUntil.ts';
import { ReplyReader } from './replyReader.ts';
import type { EntryContext } from './types.ts';

/** The envelope every scripted transaction uses; contoso.com is the allowed sender domain. */
export const FROM = 'scanner@contoso.com';
export const TO = 'alice@contoso.com';
export const HELPDESK = { username: 'helpdesk', password: 'helpdesk-pass-7c1d' };

export const IDLE_REPLY = '421 4.4.2 Idle too long: closing connection';
export const NO_PROGRESS_REPLY = '421 4.4.2 Too slow, no progress: closing connection';
/** The message another device sends while tricklers hold their address's connections. */
export const TRICKLE_BYSTANDER = 'Subject: sent while tricklers hold their slots\r\n\r\nok\r\n';
export const BAD_CREDENTIALS = '535 5.7.8 Authentication credentials invalid';

export function plainAuth(user: string, pass: string): string {
  return Buffer.from(`\0${user}\0${pass}`).toString('base64');
}

/** How many log records the agent has written so far, to look only at what follows. */
function logMark(agent: TestAgent): number {
  return agent.logs.lines.length;
}

function loggedSince(agent: TestAgent, mark: number, match: (record: Record<string, unknown>) => boolean): boolean {
  return agent.logs.lines.slice(mark).some((line) => match(JSON.parse(line) as Record<string, unknown>));
}

/** The agent gave up on a message whose client went away: logged, and its temp file removed. */
async function abandonedMessageCleanedUp(agent: TestAgent, mark: number): Promise<void> {
  await pollUntil(
    () => loggedSince(agent, mark, (r) => r.msg === 'message refused' && r.reply === 451 && String(r.err).includes('Connection closed before the message was received in full')),
    5_000,
    'the abandoned message to be logged as refused',
    0,
  );
}

/**
 * CVE-2011-0411 class: commands pipelined behind STARTTLS in the same packet must be dropped,
 * not run inside the TLS session where they would pass as the client's own.
 */
export async function commandsInjectedAfterStartTls({ agent, track }: EntryContext): Promise<void> {
  const socket = connect({ host: '127.0.0.1', port: agent.address.port });
  track(() => socket.destroy());
  await once(socket, 'connect');
  const plain = new ReplyReader(socket);
  assert.match(await plain.next(), /^220 /);
  assert.match(await plain.command('EHLO device.test'), /^250 /);
  socket.write(
    'STARTTLS\r\nMAIL FROM:<injected@contoso.com>\r\nRCPT TO:<victim@contoso.com>\r\nDATA\r\nSubject: injected\r\n\r\nsent before the handshake\r\n.\r\n',
  );
  assert.equal(await plain.next(), '220 Ready to start TLS');
  assert.deepEqual(plain.detach(), { replies: [], partial: '' }, 'no plaintext answer to the injected commands');

  const secure = connectTls({ socket, servername: 'localhost', ca: caPem });
  track(() => secure.destroy());
  await once(secure, 'secureConnect');
  const reader = new ReplyReader(secure);
  // The first reply inside TLS answers this EHLO: a server that ran the buffered commands would answer them first.
  assert.equal(await reader.command('EHLO device.test'), `250 SIZE ${agent.config.listen.maxMessageSize}`);
  assert.equal(await reader.command(`RCPT TO:<${TO}>`), '503 Error: need MAIL command', 'the injected MAIL FROM never ran');
  assert.equal(await reader.command('STARTTLS'), '503 Error: TLS already active');
  assert.equal(await reader.command('QUIT'), '221 Bye');
}

/** A client that answers "220 Ready to start TLS" with plaintext instead of a ClientHello. */
export async function plaintextInsteadOfClientHello({ agent, track }: EntryContext): Promise<void> {
  const socket = connect({ host: '127.0.0.1', port: agent.address.port });
  track(() => socket.destroy());
  await once(socket, 'connect');
  const reader = new ReplyReader(socket);
  assert.match(await reader.next(), /^220 /);
  assert.match(await reader.command('EHLO device.test'), /^250 /);
  assert.equal(await reader.command('STARTTLS'), '220 Ready to start TLS');
  socket.write('MAIL FROM:<scanner@contoso.com>\r\nthis is not a TLS record\r\n');
  // The handshake fails and the server drops the connection without a word in plaintext.
  await assert.rejects(reader.next(), /^Error: closed before a reply; partial line ""$/);
}

/** An implicit-TLS client (port 465 habits) pointed at the plain SMTP port. */
export async function clientHelloOnPlainPort({ agent, track }: EntryContext): Promise<void> {
  const secure = connectTls({ host: '127.0.0.1', port: agent.address.port, servername: 'localhost', ca: caPem });
  track(() => secure.destroy());
  // Not events.once: that would reject on the 'error' this test waits for.
  const closed = new Promise((resolve) => secure.once('close', resolve));
  // The server's first bytes are an SMTP line (220, or 421 when the hello held a line end), not a ServerHello.
  const [error] = (await once(secure, 'error')) as [NodeJS.ErrnoException];
  assert.match(String(error.code), /^ERR_SSL_/, `TLS error ${error.code}: ${error.message}`);
  await closed;
}

/** The device loses power in the middle of DATA: nothing is kept, and the temp file goes. */
export async function disconnectMidData({ agent, open }: EntryContext): Promise<void> {
  const mark = logMark(agent);
  const client = await open();
  await startData(client, FROM, [TO]);
  client.write('Subject: cut off\r\n\r\nthe device loses power after these bytes');
  // A round trip on another connection: the server has read the partial body before the cut.
  const other = await open();
  assert.equal(await other.command('NOOP'), '250 OK');
  client.close();
  await abandonedMessageCleanedUp(agent, mark);
  await quit(other);
}

/** Many wrong passwords from one address, over two connections: always 535 5.7.8, each answer later. */
export async function authBruteForce({ open }: EntryContext): Promise<void> {
  const first = await open({ localAddress: '127.0.0.2' });
  const second = await open({ localAddress: '127.0.0.2' });
  const elapsed: number[] = [];
  for (let attempt = 0; attempt < 5; attempt++) {
    const client = attempt % 2 === 0 ? first : second;
    const started = performance.now();
    assert.equal(await client.command(`AUTH PLAIN ${plainAuth(HELPDESK.username, `guess-${attempt}`)}`), BAD_CREDENTIALS);
    elapsed.push(performance.now() - started);
  }
  // AuthThrottle answers after 0, 250, 500, 1000, 2000 ms; timers give lower bounds only.
  const floors = [0, 250, 500, 1_000, 2_000];
  const shown = elapsed.map((ms) => ms.toFixed(0)).join(', ');
  floors.forEach((floor, i) => assert.ok((elapsed[i] ?? 0) >= floor * 0.9, `attempt ${i + 1} answered after ${shown} ms`));
  // The device with the right password is not locked out, and a success clears the count.
  assert.equal(await first.command(`AUTH PLAIN ${plainAuth(HELPDESK.username, HELPDESK.password)}`), '235 Authentication successful');
  assert.equal(await first.command(`MAIL FROM:<helpdesk@contoso.com>`), '250 Accepted');
  await Promise.all([quit(first), quit(second)]);
}

/** Slowloris, idle kind: connects, reads the banner, says nothing. */
export async function idleAfterGreeting({ agent, open }: EntryContext): Promise<void> {
  const client = await open({ opening: 'greeting' });
  const started = performance.now();
  assert.deepEqual(await client.read(1), [IDLE_REPLY]);
  await client.whenClosed();
  const idle = agent.config.listen.idleTimeout;
  assert.ok(performance.now() - started >= idle * 0.9, `closed after ${(performance.now() - started).toFixed(0)} ms, idleTimeout ${idle} ms`);
}

/** Slowloris inside DATA: part of a body, then silence. Timed out, nothing kept, temp file gone. */
export async function idleMidData({ agent, open }: EntryContext): Promise<void> {
  const mark = logMark(agent);
  const client = await open();
  await startData(client, FROM, [TO]);
  client.write('Subject: stalled\r\n\r\nhalf a message');
  assert.deepEqual(await client.read(1), [IDLE_REPLY]);
  await client.whenClosed();
  await abandonedMessageCleanedUp(agent, mark);
}

/**
 * Writes `text` one byte every `gapMs` (each gap shorter than idleTimeout, so smtp-server's idle
 * timer never fires) until the agent closes the connection; returns the ms it took.
 */
async function trickle(client: RawSmtpClient, text: string, gapMs: number, giveUpMs: number): Promise<number> {
  const started = performance.now();
  for (let i = 0; !client.isClosed; i++) {
    assert.ok(performance.now() - started < giveUpMs, `still connected after ${giveUpMs} ms of trickling`);
    client.write(text[i % text.length] as string);
    await pace(gapMs);
  }
  return performance.now() - started;
}

/** Slowloris, trickling kind: a command line that never ends, one byte at a time. */
export async function tricklingCommandLine({ agent, open }: EntryContext): Promise<void> {
  const client = await open({ opening: 'greeting' });
  const idle = agent.config.listen.idleTimeout;
  const took = await trickle(client, 'NOOP and never a line end ', idle * 0.3, idle * 6);
  assert.deepEqual(client.takeReplies(), [NO_PROGRESS_REPLY]);
  assert.ok(took >= idle * 2 * 0.9, `closed after ${took.toFixed(0)} ms, deadline ${idle * 2} ms`);
}

/** Slowloris that completes commands: NOOP after NOOP, each trickled, never a message. */
export async function tricklingNoops({ agent, open }: EntryContext): Promise<void> {
  const client = await open({ opening: 'greeting' });
  const idle = agent.config.listen.idleTimeout;
  await trickle(client, 'NOOP\r\n', idle * 0.1, idle * 6);
  const replies = client.takeReplies();
  assert.equal(replies.at(-1), NO_PROGRESS_REPLY);
  assert.ok(replies.slice(0, -1).every((r) => r === '250 OK') && replies.length > 2, `replies: ${JSON.stringify(replies)}`);
}

/** Slowloris inside DATA: the body trickled byte by byte. Closed, nothing kept, temp file gone. */
export async function tricklingData({ agent, open }: EntryContext): Promise<void> {
  const mark = logMark(agent);
  const client = await open();
  await startData(client, FROM, [TO]);
  const idle = agent.config.listen.idleTimeout;
  await trickle(client, 'Subject: slow\r\n\r\nbody ', idle * 0.3, idle * 6);
  assert.deepEqual(client.takeReplies(), [NO_PROGRESS_REPLY]);
  await abandonedMessageCleanedUp(agent, mark);
}

/** A large message over a slow link: each pause shorter than idleTimeout, the whole longer than the deadline. */
export async function slowButSteadyData({ agent, open }: EntryContext): Promise<void> {
  const client = await open();
  await startData(client, FROM, [TO]);
  const idle = agent.config.listen.idleTimeout;
  const started = performance.now();
  for (const piece of SLOW_STEADY_PIECES) {
    client.write(piece);
    await pace(idle * 0.8);
  }
  client.write('.\r\n');
  queuedId((await client.read(1))[0] as string);
  assert.ok(performance.now() - started > idle * 2, 'the transfer took longer than the no-progress deadline');
  await quit(client);
}
/** 64 KiB and more per piece: each piece is progress. */
const SLOW_STEADY_PIECES = [
  `Subject: a large scan over a slow link\r\n\r\n${`${'x'.repeat(78)}\r\n`.repeat(820)}`,
  `${'y'.repeat(78)}\r\n`.repeat(820),
  `${'z'.repeat(78)}\r\n`.repeat(820),
];
export const SLOW_STEADY_BODY = SLOW_STEADY_PIECES.join('');

/**
 * Tricklers (clients that keep a command line open byte by byte) hold at most
 * maxConnectionsPerClient connections from their address; other devices are still served.
 */
export async function tricklersHoldOnlyTheirShare({ agent, open, track }: EntryContext): Promise<void> {
  const share = agent.config.listen.maxConnectionsPerClient;
  const tricklers = await Promise.all(Array.from({ length: share }, () => open({ localAddress: '127.0.0.3', opening: 'greeting' })));
  for (const client of tricklers) {
    client.write('NO');
  }
  const extra = await RawSmtpClient.open(agent.address.port, '127.0.0.3');
  track(() => extra.close());
  assert.deepEqual(await extra.read(1), ['421 4.7.0 Too many connections from your address, try again later']);
  await extra.whenClosed();
  const device = await open();
  queuedId(await sendMessage(device, FROM, [TO], TRICKLE_BYSTANDER));
  await quit(device);
}

const FLOOD_CONNECTIONS = 1_000;
/** Connects started together; under the listen backlog (511) so that no SYN is dropped and retried. */
const FLOOD_WAVE = 250;

/** 1,000 connections at once: maxConnections get the banner, the rest 421; all are closed after. */
export async function thousandConnections({ agent, track }: EntryContext): Promise<void> {
  const { maxConnections } = agent.config.listen;
  const clients: RawSmtpClient[] = [];
  while (clients.length < FLOOD_CONNECTIONS) {
    const wave = await Promise.all(
      Array.from({ length: Math.min(FLOOD_WAVE, FLOOD_CONNECTIONS - clients.length) }, async () => {
        const client = await RawSmtpClient.open(agent.address.port);
        track(() => client.close());
        return client;
      }),
    );
    clients.push(...wave);
  }
  const first = await Promise.all(clients.map(async (client) => (await client.read(1))[0]));
  const greeting = `220 ${hostname()} ESMTP smarthost ready`;
  const refusal = '421 4.7.0 Too many connections, try again later';
  const tally = new Map<string | undefined, number>();
  for (const reply of first) {
    tally.set(reply, (tally.get(reply) ?? 0) + 1);
  }
  assert.deepEqual(
    Object.fromEntries(tally),
    { [greeting]: maxConnections, [refusal]: FLOOD_CONNECTIONS - maxConnections },
    'first reply of each connection',
  );
  await Promise.all(
    clients.map(async (client, i) => {
      if (first[i] === greeting) {
        assert.equal(await client.command('QUIT'), '221 Bye');
      }
      await client.whenClosed();
    }),
  );
}
