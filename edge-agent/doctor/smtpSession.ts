import { connect as connectTcp, type Socket } from 'node:net';
import { connect as connectTls, type ConnectionOptions, type TLSSocket } from 'node:tls';

export interface SmtpReplyLines {
  code: number;
  /** The reply's lines without their code, e.g. ['smtp.office365.com Hello', 'STARTTLS', ...]. */
  lines: string[];
  /** One line for reports: '550 5.7.60 SMTP; Client does not ...'. */
  text: string;
}

/**
 * A step-by-step SMTP client for diagnosis: unlike the delivery client it stops after each
 * command so that doctor can say which one failed and what the server answered.
 */
export class SmtpSession {
  private buffer = '';
  private waiting: { resolve: (reply: SmtpReplyLines) => void; reject: (error: Error) => void } | undefined;
  private closedError: Error | undefined;

  private constructor(
    private socket: Socket | TLSSocket,
    private readonly timeoutMs: number,
  ) {
    this.attach(socket);
  }

  static async open(host: string, port: number, timeoutMs: number, tls?: ConnectionOptions): Promise<SmtpSession> {
    const socket = await new Promise<Socket | TLSSocket>((resolve, reject) => {
      const s = tls ? connectTls({ ...tls, host, port }) : connectTcp({ host, port });
      const timer = setTimeout(() => {
        s.destroy();
        reject(Object.assign(new Error(`no answer from ${host}:${port} within ${timeoutMs} ms`), { code: 'ETIMEDOUT' }));
      }, timeoutMs);
      s.once(tls ? 'secureConnect' : 'connect', () => {
        clearTimeout(timer);
        resolve(s);
      });
      s.once('error', (error) => {
        clearTimeout(timer);
        reject(error);
      });
    });
    return new SmtpSession(socket, timeoutMs);
  }

  get tlsSocket(): TLSSocket | undefined {
    return 'getProtocol' in this.socket ? this.socket : undefined;
  }

  private attach(socket: Socket | TLSSocket): void {
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      this.buffer += chunk;
      this.deliver();
    });
    const onEnd = (error?: Error) => {
      this.closedError ??= error ?? new Error('the server closed the connection');
      this.waiting?.reject(this.closedError);
      this.waiting = undefined;
    };
    socket.on('error', onEnd);
    socket.on('close', () => onEnd());
  }

  private deliver(): void {
    if (!this.waiting) return;
    const lines = this.buffer.split('\r\n');
    for (let i = 0; i < lines.length - 1; i += 1) {
      if (/^\d{3}(?: |$)/.test(lines[i] ?? '')) {
        const replyLines = lines.slice(0, i + 1);
        this.buffer = lines.slice(i + 1).join('\r\n');
        const code = Number(replyLines[0]?.slice(0, 3));
        const texts = replyLines.map((line) => line.slice(4));
        const waiting = this.waiting;
        this.waiting = undefined;
        waiting.resolve({ code, lines: texts, text: `${code} ${texts.join(' ')}`.trim() });
        return;
      }
    }
  }

  /** The next reply (the greeting, or the answer to the last command). */
  read(): Promise<SmtpReplyLines> {
    if (this.closedError) return Promise.reject(this.closedError);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting = undefined;
        reject(Object.assign(new Error(`no reply within ${this.timeoutMs} ms`), { code: 'ETIMEDOUT' }));
      }, this.timeoutMs);
      this.waiting = {
        resolve: (reply) => {
          clearTimeout(timer);
          resolve(reply);
        },
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      };
      this.deliver();
    });
  }

  command(line: string): Promise<SmtpReplyLines> {
    this.socket.write(`${line}\r\n`);
    return this.read();
  }

  /** Writes raw bytes (a message body) and reads the reply to its final dot. */
  data(body: string): Promise<SmtpReplyLines> {
    this.socket.write(body);
    return this.read();
  }

  /** Upgrades after a 220 to STARTTLS. */
  async upgrade(options: ConnectionOptions): Promise<TLSSocket> {
    const plain = this.socket;
    plain.removeAllListeners('data');
    plain.removeAllListeners('close');
    plain.removeAllListeners('error');
    const secure = await new Promise<TLSSocket>((resolve, reject) => {
      const s = connectTls({ ...options, socket: plain });
      const timer = setTimeout(() => {
        s.destroy();
        reject(Object.assign(new Error(`TLS handshake did not finish within ${this.timeoutMs} ms`), { code: 'ETIMEDOUT' }));
      }, this.timeoutMs);
      s.once('secureConnect', () => {
        clearTimeout(timer);
        resolve(s);
      });
      s.once('error', (error) => {
        clearTimeout(timer);
        reject(error);
      });
    });
    this.socket = secure;
    this.buffer = '';
    this.attach(secure);
    return secure;
  }

  close(): void {
    if (!this.closedError) this.socket.end('QUIT\r\n');
    this.closedError ??= new Error('closed');
    this.socket.destroy();
  }
}
