import type { Duplex } from 'node:stream';
import { ReplyLines } from '../../testbed/helpers/replyLines.ts';

/**
 * Complete SMTP replies (the final line of each) from any duplex stream. RawSmtpClient owns its
 * socket, so a session that is upgraded with STARTTLS reads the plaintext part and the TLS part
 * through one of these each.
 */
export class ReplyReader {
  private readonly split = new ReplyLines();
  private readonly replies: string[] = [];
  private wake: (() => void) | undefined;
  private closed = false;

  private readonly onData = (chunk: Buffer): void => {
    this.replies.push(...this.split.push(chunk));
    this.wake?.();
  };

  private readonly onClose = (): void => {
    this.closed = true;
    this.wake?.();
  };

  constructor(private readonly stream: Duplex) {
    stream.on('data', this.onData);
    stream.once('close', this.onClose);
  }

  /** The next reply; rejects when the stream closes first. */
  async next(): Promise<string> {
    while (this.replies.length === 0) {
      if (this.closed) {
        throw new Error(`closed before a reply; partial line ${JSON.stringify(this.split.partial)}`);
      }
      await new Promise<void>((resolve) => (this.wake = resolve));
      this.wake = undefined;
    }
    return this.replies.shift() as string;
  }

  /** Writes a command line and returns its reply. */
  async command(line: string): Promise<string> {
    this.stream.write(`${line}\r\n`);
    return this.next();
  }

  /**
   * Stops reading, so that something else (a TLS client) can take the stream over, and returns
   * whatever arrived after the last reply: a server that answered commands injected behind
   * STARTTLS would have put those answers here.
   */
  detach(): { replies: string[]; partial: string } {
    this.stream.off('data', this.onData);
    this.stream.off('close', this.onClose);
    return { replies: this.replies.splice(0), partial: this.split.partial };
  }
}
