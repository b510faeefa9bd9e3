import { connect, type Socket } from 'node:net';
import { ReplyLines } from './replyLines.ts';

/**
 * A bare SMTP client that writes exactly the bytes it is given, for what a well-behaved client
 * library would never send (bare LFs, fake end-of-data, pipelined floods).
 */
export class RawSmtpClient {
  private readonly split = new ReplyLines();
  private waiters: { count: number; resolve: (lines: string[]) => void; reject: (error: Error) => void }[] = [];
  private replies: string[] = [];
  private closed = false;

  private constructor(private readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.replies.push(...this.split.push(chunk));
      this.flush();
    });
    socket.on('close', () => {
      this.closed = true;
      for (const waiter of this.waiters.splice(0)) {
        waiter.reject(new Error(`connection closed; replies so far: ${JSON.stringify(this.replies)}`));
      }
    });
    socket.on('error', () => undefined);
  }

  static async open(port: number, localAddress?: string): Promise<RawSmtpClient> {
    const socket = connect({ host: '127.0.0.1', port, localAddress });
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    return new RawSmtpClient(socket);
  }

  /** The next `count` complete replies (final lines only). */
  read(count = 1): Promise<string[]> {
    return new Promise((resolve, reject) => {
      this.waiters.push({ count, resolve, reject });
      this.flush();
      if (this.closed && this.waiters.length > 0) {
        // Closed before the call: no reply can come any more.
        this.waiters.splice(0);
        reject(new Error(`connection closed; replies so far: ${JSON.stringify(this.replies)}`));
      }
    });
  }

  /** Every complete reply received and not read yet. */
  takeReplies(): string[] {
    return this.replies.splice(0);
  }

  write(bytes: string | Buffer): void {
    this.socket.write(typeof bytes === 'string' ? Buffer.from(bytes, 'latin1') : bytes);
  }

  /** Writes a command line and returns its reply. */
  async command(line: string): Promise<string> {
    this.write(`${line}\r\n`);
    const [reply] = await this.read(1);
    return reply as string;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Resolves once the server has closed the connection. */
  whenClosed(): Promise<void> {
    if (this.closed) return Promise.resolve();
    return new Promise((resolve) => this.socket.once('close', () => resolve()));
  }

  close(): void {
    this.socket.destroy();
  }

  private flush(): void {
    while (this.waiters.length > 0 && this.replies.length >= (this.waiters[0]?.count ?? 0)) {
      const waiter = this.waiters.shift()!;
      waiter.resolve(this.replies.splice(0, waiter.count));
    }
  }
}
