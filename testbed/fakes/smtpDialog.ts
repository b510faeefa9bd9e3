import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';

/**
 * A bare SMTP client for tests that need to see exact replies or send what nodemailer would
 * not (AUTH before STARTTLS, a two-step XOAUTH2, pipelined commands). One reply per command.
 */
export interface SmtpResponse {
  code: number;
  /** Text of every line after `code` and its separator. */
  lines: string[];
  /** The reply as a single line: `${code} ${lines.join(' ')}` (multi-line replies joined). */
  line: string;
}

export class SmtpDialog {
  private socket: Socket | TLSSocket;
  private buffer = '';
  private current: string[] = [];
  private readonly replies: SmtpResponse[] = [];
  private readonly waiting: { resolve: (r: SmtpResponse) => void; reject: (e: Error) => void }[] = [];
  private ended = false;
  private readonly onData = (chunk: Buffer): void => this.feed(chunk.toString('utf8'));
  /** Resolves when the server closes the connection. */
  readonly closed: Promise<void>;

  private constructor(socket: Socket) {
    this.socket = socket;
    this.closed = new Promise<void>((resolve) => {
      const done = (): void => {
        this.ended = true;
        for (const w of this.waiting.splice(0)) w.reject(new Error('connection closed before a reply'));
        resolve();
      };
      socket.once('close', done);
    });
    socket.on('error', () => undefined);
    socket.on('data', this.onData);
  }

  /** Connects and waits for the greeting (rejects if the server closes without one). */
  static async open(port: number, host = '127.0.0.1'): Promise<{ dialog: SmtpDialog; greeting: SmtpResponse }> {
    const socket = netConnect({ port, host });
    const dialog = new SmtpDialog(socket);
    const greeting = await dialog.next();
    return { dialog, greeting };
  }

  /** Connects and resolves with what happened first: a greeting, or the server closing. */
  static async probe(port: number, host = '127.0.0.1'): Promise<{ dialog: SmtpDialog; greeting: SmtpResponse | null }> {
    const socket = netConnect({ port, host });
    const dialog = new SmtpDialog(socket);
    try {
      return { dialog, greeting: await dialog.next() };
    } catch {
      return { dialog, greeting: null };
    }
  }

  /** Sends one line (CRLF added) and returns the reply to it. */
  async send(line: string): Promise<SmtpResponse> {
    this.socket.write(`${line}\r\n`);
    return this.next();
  }

  /** Writes raw bytes without waiting for anything. */
  write(data: string | Buffer): void {
    this.socket.write(data);
  }

  /** The next reply, already received or still to come. */
  next(): Promise<SmtpResponse> {
    const ready = this.replies.shift();
    if (ready) return Promise.resolve(ready);
    if (this.ended) return Promise.reject(new Error('connection closed before a reply'));
    return new Promise((resolve, reject) => this.waiting.push({ resolve, reject }));
  }

  /** STARTTLS and the handshake, trusting `ca`. Returns the 220 reply. */
  async startTls(ca: string): Promise<SmtpResponse> {
    const reply = await this.send('STARTTLS');
    if (reply.code !== 220) return reply;
    const plain = this.socket;
    plain.off('data', this.onData);
    const secure = tlsConnect({ socket: plain, ca, minVersion: 'TLSv1.2' });
    await new Promise<void>((resolve, reject) => {
      secure.once('secureConnect', resolve);
      secure.once('error', reject);
    });
    secure.on('error', () => undefined);
    secure.on('data', this.onData);
    this.socket = secure;
    return reply;
  }

  /** EHLO then STARTTLS then EHLO again; returns the EHLO reply inside TLS. */
  async ehloTls(ca: string, name = 'client.test'): Promise<SmtpResponse> {
    await this.send(`EHLO ${name}`);
    const tls = await this.startTls(ca);
    if (tls.code !== 220) throw new Error(`STARTTLS refused: ${tls.line}`);
    return this.send(`EHLO ${name}`);
  }

  close(): Promise<void> {
    this.socket.destroy();
    return this.closed;
  }

  private feed(text: string): void {
    this.buffer += text;
    let nl: number;
    while ((nl = this.buffer.indexOf('\n')) >= 0) {
      const raw = this.buffer.slice(0, nl).replace(/\r$/, '');
      this.buffer = this.buffer.slice(nl + 1);
      const m = /^(\d{3})([ -]?)(.*)$/.exec(raw);
      if (!m) continue;
      this.current.push(m[3] ?? '');
      if (m[2] !== '-') {
        const lines = this.current;
        this.current = [];
        const code = Number(m[1]);
        const reply: SmtpResponse = { code, lines, line: `${code} ${lines.join(' ')}`.trimEnd() };
        const w = this.waiting.shift();
        if (w) w.resolve(reply);
        else this.replies.push(reply);
      }
    }
  }
}
