import { connect, type Socket } from 'node:net';
import { createTransport } from 'nodemailer';
import { ReplyLines } from '../../testbed/helpers/replyLines.ts';

export const KiB = 1024;
export const MiB = 1024 * KiB;

/** Envelope used by every benchmark message: a sender the fake upstream lets the relay mailbox send as. */
export const SENDER = 'scanner@contoso.com';
export const RECIPIENT = 'you@contoso.com';

/** A message of exactly `size` bytes (at least its header): 76-character lines of x after a header. */
export function messageOf(size: number, n: number): Buffer {
  const header =
    `From: ${SENDER}\r\nTo: ${RECIPIENT}\r\nSubject: bench ${n}\r\n` +
    `Date: ${new Date().toUTCString().replace('GMT', '+0000')}\r\nMessage-ID: <bench-${n}-${size}@contoso.com>\r\n\r\n`;
  const line = 'x'.repeat(76) + '\r\n';
  const body = line.repeat(Math.max(1, Math.ceil((size - header.length) / line.length)));
  return Buffer.from(header + body).subarray(0, Math.max(size, header.length + 2));
}

/** One SMTP session on a raw socket: sequential transactions, no pipelining, timing end-of-DATA → 250. */
export class Session {
  private readonly split = new ReplyLines();
  private waiting: { resolve: (line: string) => void; reject: (error: Error) => void } | undefined;
  private lines: string[] = [];
  private failure: Error | undefined;

  private constructor(private readonly socket: Socket) {
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => {
      for (const line of this.split.push(chunk)) {
        if (this.waiting) {
          const { resolve } = this.waiting;
          this.waiting = undefined;
          resolve(line);
        } else {
          this.lines.push(line);
        }
      }
    });
    const fail = (error: Error) => {
      this.failure ??= error;
      const waiting = this.waiting;
      this.waiting = undefined;
      waiting?.reject(this.failure);
    };
    socket.on('error', fail);
    socket.on('close', () => fail(new Error('connection closed by the server')));
  }

  static async open(port: number): Promise<Session> {
    const socket = connect({ host: '127.0.0.1', port });
    await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
    const session = new Session(socket);
    expectReply(await session.reply(), '220');
    expectReply(await session.command('EHLO bench.local'), '250');
    return session;
  }

  reply(): Promise<string> {
    const line = this.lines.shift();
    if (line !== undefined) return Promise.resolve(line);
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => (this.waiting = { resolve, reject }));
  }

  async command(text: string): Promise<string> {
    this.socket.write(text + '\r\n');
    return this.reply();
  }

  /**
   * Sends one message; returns milliseconds from the moment the last byte of DATA (the final
   * CRLF.CRLF) was handed to the kernel to the arrival of the 250.
   */
  async send(message: Buffer): Promise<number> {
    expectReply(await this.command(`MAIL FROM:<${SENDER}>`), '250');
    expectReply(await this.command(`RCPT TO:<${RECIPIENT}>`), '250');
    expectReply(await this.command('DATA'), '354');
    // Body and terminator in one writev: the load generator shares the CPUs with the server
    // under test, so every syscall it saves is left to the server (both systems alike).
    this.socket.cork();
    this.socket.write(message);
    const written = new Promise<void>((resolve) => this.socket.write('\r\n.\r\n', () => resolve()));
    this.socket.uncork();
    await written;
    const start = process.hrtime.bigint();
    const reply = await this.reply();
    const ms = Number(process.hrtime.bigint() - start) / 1e6;
    expectReply(reply, '250');
    return ms;
  }

  async close(): Promise<void> {
    if (this.failure) return;
    this.socket.end('QUIT\r\n');
    await new Promise<void>((resolve) => {
      this.socket.once('close', () => resolve());
      setTimeout(resolve, 2_000).unref();
    });
  }

  destroy(): void {
    this.socket.destroy();
  }
}

function expectReply(reply: string, code: string): void {
  if (!reply.startsWith(code)) throw new Error(`expected ${code}, got ${reply}`);
}

export interface LoadSpec {
  connections: number;
  /** Messages to send in all (shared by the connections). */
  messages: number;
  size: number;
  /** Stop starting new messages after this long; what was sent counts. */
  maxSeconds?: number;
  /**
   * 1 KiB messages on every connection for this long first, not counted: the server's processes
   * forked (Postfix) and its hot code compiled (V8 optimizes a function after some thousands of
   * calls; with a message or two per connection a row of a few seconds measures mostly
   * unoptimized code, which a relay running for weeks never is).
   */
  warmUpSeconds?: number;
  /**
   * Called once the sessions are open and warmed up, just before the measured sends (e.g. to start
   * a clock, or to wait until the warm-up's messages were delivered); the sends wait for it.
   */
  onStart?: (warmUpSent: number) => void | Promise<void>;
}

export interface LoadResult {
  /** Messages that got their 250 in the measured part. */
  sent: number;
  /** Messages that got their 250 during the warm-up (accepted too, so delivered too). */
  warmUpSent: number;
  /** From the first measured send to the last 250. */
  seconds: number;
  /** End of DATA → 250, ms, one per message, in completion order. */
  latencies: number[];
}

/** `spec.warmUpSeconds` of 1 KiB messages, one sender per connection, each one message at a time. */
async function warmUp(spec: LoadSpec, senders: ((message: Buffer) => Promise<unknown>)[]): Promise<number> {
  if (spec.warmUpSeconds === undefined) return 0;
  const small = messageOf(KiB, -1);
  const until = Date.now() + spec.warmUpSeconds * 1000;
  let sent = 0;
  await Promise.all(
    senders.map(async (send) => {
      do {
        await send(small);
        sent += 1;
      } while (Date.now() < until);
    }),
  );
  return sent;
}

/** C raw-socket sessions share N messages of size S; each session sends one message at a time. */
export async function runRaw(port: number, spec: LoadSpec): Promise<LoadResult> {
  const message = messageOf(spec.size, 0);
  const sessions = await Promise.all(Array.from({ length: spec.connections }, () => Session.open(port)));
  try {
    const warmUpSent = await warmUp(spec, sessions.map((s) => (small) => s.send(small)));
    const latencies: number[] = [];
    let next = 0;
    await spec.onStart?.(warmUpSent);
    const started = process.hrtime.bigint();
    const deadline = spec.maxSeconds === undefined ? Infinity : Date.now() + spec.maxSeconds * 1000;
    await Promise.all(
      sessions.map(async (session) => {
        while (next < spec.messages && Date.now() < deadline) {
          next += 1;
          latencies.push(await session.send(message));
        }
      }),
    );
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    await Promise.all(sessions.map((s) => s.close()));
    return { sent: latencies.length, warmUpSent, seconds, latencies };
  } finally {
    for (const s of sessions) s.destroy();
  }
}

/** The same through a nodemailer pool (what a Node application would use); no latencies. */
export async function runNodemailer(port: number, spec: LoadSpec): Promise<LoadResult> {
  const transport = createTransport({ host: '127.0.0.1', port, pool: true, maxConnections: spec.connections, maxMessages: Infinity, ignoreTLS: true });
  try {
    const message = messageOf(spec.size, 0);
    const sendSmall = (small: Buffer) => transport.sendMail({ envelope: { from: SENDER, to: [RECIPIENT] }, raw: small });
    const warmUpSent = await warmUp(spec, Array.from({ length: spec.connections }, () => sendSmall));
    await spec.onStart?.(warmUpSent);
    const started = process.hrtime.bigint();
    const deadline = spec.maxSeconds === undefined ? Infinity : Date.now() + spec.maxSeconds * 1000;
    let next = 0;
    let sent = 0;
    await Promise.all(
      Array.from({ length: spec.connections }, async () => {
        while (next < spec.messages && Date.now() < deadline) {
          next += 1;
          await transport.sendMail({ envelope: { from: SENDER, to: [RECIPIENT] }, raw: message });
          sent += 1;
        }
      }),
    );
    return { sent, warmUpSent, seconds: Number(process.hrtime.bigint() - started) / 1e9, latencies: [] };
  } finally {
    transport.close();
  }
}

/** Nearest-rank percentile of an ascending list; NaN when empty. */
export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] as number;
}
