/**
 * Splits what an SMTP server sends into complete reply lines and keeps only the final line of
 * each reply ("250 OK", not the "250-..." lines before it). Shared by the raw test clients and the
 * benchmark's load generator.
 */
export class ReplyLines {
  private buffer = '';

  /** The final reply lines completed by this chunk, in order. */
  push(chunk: Buffer): string[] {
    this.buffer += chunk.toString('latin1');
    const finished: string[] = [];
    let at: number;
    while ((at = this.buffer.indexOf('\r\n')) !== -1) {
      const line = this.buffer.slice(0, at);
      this.buffer = this.buffer.slice(at + 2);
      if (!/^\d{3}-/.test(line)) {
        finished.push(line);
      }
    }
    return finished;
  }

  /** What arrived after the last complete line. */
  get partial(): string {
    return this.buffer;
  }
}
