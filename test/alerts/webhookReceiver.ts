import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ReceivedPost {
  path: string;
  contentType: string | undefined;
  body: unknown;
  text: string;
}

/** A local incoming-webhook stand-in on 127.0.0.1: records each POST, answers `status` (200 unless told). */
export class WebhookReceiver {
  readonly posts: ReceivedPost[] = [];
  /** The status the next requests get; 500 makes the sender retry at its next look. */
  status = 200;
  /** Takes requests and never answers them (the sender's timeout). */
  hang = false;
  private server: Server | undefined;

  async start(): Promise<this> {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        if (this.hang) return;
        const text = Buffer.concat(chunks).toString('utf8');
        if (this.status >= 200 && this.status < 300) {
          this.posts.push({ path: req.url ?? '', contentType: req.headers['content-type'], body: JSON.parse(text) as unknown, text });
        }
        res.writeHead(this.status).end(this.status === 200 ? '1' : 'error');
      });
    });
    this.server.listen(0, '127.0.0.1');
    await once(this.server, 'listening');
    return this;
  }

  /** An address whose path looks like a Teams/Slack secret, so tests can check it is never logged. */
  url(secretPath: string): string {
    return `http://127.0.0.1:${(this.server?.address() as AddressInfo).port}/${secretPath}`;
  }

  async close(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}
