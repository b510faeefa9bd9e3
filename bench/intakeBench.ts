/**
 * Intake benchmark: starts `smarthost start` as its own process, the bundled build that `npm start`
 * runs (embedded default, mail to the
 * outbox, fsync before every 250) and measures, per scenario, messages/s accepted, the time from
 * the end of DATA to the 250 (p50/p95/p99) and the agent's peak RSS. Prints a table.
 *
 *   npm run bench -- [--quick]
 *
 * Not part of `npm test`: the numbers depend on the machine and on what else it is doing.
 */
import { connect, type Socket } from 'node:net';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createTransport } from 'nodemailer';
import { execFileSync } from 'node:child_process';
import { BUNDLE, startAgentProcess, writeConfig, type AgentProcess } from '../test/helpers/agentProcess.ts';

interface Scenario {
  name: string;
  client: 'raw' | 'nodemailer';
  connections: number;
  messages: number;
  size: number;
}

const quick = process.argv.includes('--quick');
const KiB = 1024;
const MiB = 1024 * KiB;

const scenarios: Scenario[] = [
  { name: '1 KiB, 10 conn (nodemailer)', client: 'nodemailer', connections: 10, messages: quick ? 300 : 2000, size: KiB },
  { name: '1 KiB, 1 conn', client: 'raw', connections: 1, messages: quick ? 200 : 1000, size: KiB },
  { name: '1 KiB, 10 conn', client: 'raw', connections: 10, messages: quick ? 300 : 2000, size: KiB },
  { name: '100 KiB, 10 conn', client: 'raw', connections: 10, messages: quick ? 200 : 1000, size: 100 * KiB },
  { name: '5 MiB, 1 conn', client: 'raw', connections: 1, messages: quick ? 5 : 20, size: 5 * MiB },
  { name: '30 MiB, 1 conn', client: 'raw', connections: 1, messages: quick ? 1 : 3, size: 30 * MiB },
];

function messageOf(size: number, n: number): Buffer {
  const header = `From: bench@contoso.com\r\nTo: you@contoso.com\r\nSubject: bench ${n}\r\n\r\n`;
  const line = 'x'.repeat(76) + '\r\n';
  const body = line.repeat(Math.max(1, Math.ceil((size - header.length) / line.length)));
  return Buffer.from(header + body).subarray(0, Math.max(size, header.length + 2));
}

/** One SMTP session on a raw socket: sequential transactions, timing end-of-DATA → 250. */
class Session {
  private buffer = '';
  private waiting: ((line: string) => void) | undefined;
  private lines: string[] = [];

  constructor(private readonly socket: Socket) {
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => {
      this.buffer += chunk.toString('latin1');
      let at: number;
      while ((at = this.buffer.indexOf('\r\n')) !== -1) {
        const line = this.buffer.slice(0, at);
        this.buffer = this.buffer.slice(at + 2);
        if (/^\d{3}-/.test(line)) continue;
        if (this.waiting) {
          const resolve = this.waiting;
          this.waiting = undefined;
          resolve(line);
        } else {
          this.lines.push(line);
        }
      }
    });
  }

  static async open(port: number): Promise<Session> {
    const socket = connect({ host: '127.0.0.1', port });
    await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
    const session = new Session(socket);
    await session.reply();
    await session.command('EHLO bench.local');
    return session;
  }

  reply(): Promise<string> {
    const line = this.lines.shift();
    if (line !== undefined) return Promise.resolve(line);
    return new Promise((resolve) => (this.waiting = resolve));
  }

  async command(text: string): Promise<string> {
    this.socket.write(text + '\r\n');
    return this.reply();
  }

  /** Sends one message; returns milliseconds from the last byte of DATA to the 250. */
  async send(message: Buffer): Promise<number> {
    expect(await this.command('MAIL FROM:<bench@contoso.com>'), '250');
    expect(await this.command('RCPT TO:<you@contoso.com>'), '250');
    expect(await this.command('DATA'), '354');
    this.socket.write(message);
    const end = Buffer.from('\r\n.\r\n');
    const flushed = new Promise<void>((resolve) => this.socket.write(end, () => resolve()));
    await flushed;
    const start = process.hrtime.bigint();
    const reply = await this.reply();
    const ms = Number(process.hrtime.bigint() - start) / 1e6;
    expect(reply, '250');
    return ms;
  }

  close(): void {
    this.socket.end('QUIT\r\n');
  }
}

function expect(reply: string, code: string): void {
  if (!reply.startsWith(code)) throw new Error(`expected ${code}, got ${reply}`);
}

async function runRaw(port: number, s: Scenario): Promise<{ seconds: number; latencies: number[] }> {
  const message = messageOf(s.size, 0);
  const latencies: number[] = [];
  let next = 0;
  const started = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: s.connections }, async () => {
      const session = await Session.open(port);
      while (next < s.messages) {
        next += 1;
        latencies.push(await session.send(message));
      }
      session.close();
    }),
  );
  return { seconds: Number(process.hrtime.bigint() - started) / 1e9, latencies };
}

async function runNodemailer(port: number, s: Scenario): Promise<{ seconds: number; latencies: number[] }> {
  const transport = createTransport({ host: '127.0.0.1', port, pool: true, maxConnections: s.connections, maxMessages: Infinity, ignoreTLS: true });
  const message = messageOf(s.size, 0);
  const started = process.hrtime.bigint();
  let next = 0;
  await Promise.all(
    Array.from({ length: s.connections }, async () => {
      while (next < s.messages) {
        next += 1;
        await transport.sendMail({ envelope: { from: 'bench@contoso.com', to: ['you@contoso.com'] }, raw: message });
      }
    }),
  );
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  transport.close();
  return { seconds, latencies: [] };
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] as number;
}

async function rssOf(pid: number): Promise<{ rssMiB: number; peakMiB: number }> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kib = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  return { rssMiB: kib('VmRSS') / 1024, peakMiB: kib('VmHWM') / 1024 };
}

async function main(): Promise<void> {
  // Measure what `npm start` runs: the bundle, not the sources under tsx.
  execFileSync('npm', ['run', '--silent', 'build'], { stdio: 'inherit' });
  const rows: string[][] = [];
  for (const s of scenarios) {
    // A fresh agent per scenario, so each peak RSS belongs to that scenario alone.
    const dir = await mkdtemp(join(tmpdir(), 'smarthost-bench-'));
    const config = await writeConfig(dir, {
      listen: { host: '127.0.0.1', port: 0, maxConnectionsPerClient: 100, maxMessageSize: '40MB' },
      spool: { dir: join(dir, 'spool') },
      outbox: { dir: join(dir, 'outbox') },
      log: { level: 'info' },
    });
    let agent: AgentProcess | undefined;
    try {
      agent = await startAgentProcess(config, {}, BUNDLE);
      const idle = await rssOf(agent.child.pid!);
      const { seconds, latencies } = s.client === 'raw' ? await runRaw(agent.port, s) : await runNodemailer(agent.port, s);
      const mem = await rssOf(agent.child.pid!);
      const sorted = [...latencies].sort((a, b) => a - b);
      rows.push([
        s.name,
        String(s.messages),
        (s.messages / seconds).toFixed(1),
        ((s.messages * s.size) / MiB / seconds).toFixed(1),
        percentile(sorted, 50).toFixed(2),
        percentile(sorted, 95).toFixed(2),
        percentile(sorted, 99).toFixed(2),
        idle.rssMiB.toFixed(0),
        mem.peakMiB.toFixed(0),
      ]);
    } finally {
      agent?.child.kill('SIGTERM');
      await agent?.exited;
      await rm(dir, { recursive: true, force: true });
    }
  }
  const head = ['scenario', 'msgs', 'msg/s', 'MiB/s', 'p50 ms', 'p95 ms', 'p99 ms', 'idle RSS MiB', 'peak RSS MiB'];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const fmt = (r: string[]) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  console.log(fmt(head));
  for (const r of rows) console.log(fmt(r));
  console.log('\nlatency: last byte of DATA to the 250 (raw-socket client; nodemailer rows have none). fsync before every 250.');
}

await main();
