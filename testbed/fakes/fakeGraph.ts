import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { decodeJwt } from './jwt.ts';

/** Graph's documented request limit on the sendMail body (the base64 text). */
export const FAKE_GRAPH_MAX_REQUEST_BYTES = 4 * 1024 * 1024;
export const GRAPH_RESOURCE = 'https://graph.microsoft.com';
export const MAIL_SEND_ROLE = 'Mail.Send';

export interface FakeGraphSent { mailbox: string; mime: Buffer; saveToSentItems: boolean }

export interface FakeGraph {
  readonly url: string;
  readonly sent: FakeGraphSent[];
  /** The next n requests get 429 with Retry-After. */
  throttleNext(n: number, retryAfterSeconds: number): void;
  /** The next request is accepted (recorded) but answered 504, as Graph's gateway may. */
  ambiguousNext(): void;
  close(): Promise<void>;
}

/** A Graph sendMail endpoint over HTTP on 127.0.0.1, written from Microsoft's sendMail docs. */
export async function startFakeGraph(opts: { mailboxes: string[] }): Promise<FakeGraph> {
  const sent: FakeGraphSent[] = [];
  let throttle = 0;
  let retryAfter = 1;
  let ambiguous = false;
  const reply = (res: import('node:http').ServerResponse, status: number, code?: string, headers: Record<string, string> = {}) => {
    res.writeHead(status, { 'content-type': 'application/json', ...headers });
    res.end(code ? JSON.stringify({ error: { code, message: code } }) : undefined);
  };
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => { size += c.length; if (size <= FAKE_GRAPH_MAX_REQUEST_BYTES) chunks.push(c); });
    req.on('end', () => {
      const match = /^\/v1\.0\/users\/([^/]+)\/sendMail(\?.*)?$/.exec(req.url ?? '');
      if (req.method !== 'POST' || !match) return reply(res, 404, 'ResourceNotFound');
      const token = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
      const claims = token ? decodeJwt(token)?.payload : undefined;
      if (!claims) return reply(res, 401, 'InvalidAuthenticationToken');
      if (claims.aud !== GRAPH_RESOURCE) return reply(res, 401, 'InvalidAuthenticationToken');
      if (!Array.isArray(claims.roles) || !claims.roles.includes(MAIL_SEND_ROLE)) return reply(res, 403, 'ErrorAccessDenied');
      if (throttle > 0) { throttle--; return reply(res, 429, 'ApplicationThrottled', { 'retry-after': String(retryAfter) }); }
      if (size > FAKE_GRAPH_MAX_REQUEST_BYTES) return reply(res, 413, 'ErrorMessageSizeExceeded');
      const mailbox = decodeURIComponent(match[1] ?? '');
      if (!opts.mailboxes.includes(mailbox)) return reply(res, 404, 'ErrorInvalidUser');
      if (!/^text\/plain/.test(req.headers['content-type'] ?? '')) return reply(res, 400, 'ErrorMimeContentInvalid');
      const mime = Buffer.from(Buffer.concat(chunks).toString('ascii'), 'base64');
      sent.push({ mailbox, mime, saveToSentItems: !/saveToSentItems=false/.test(match[2] ?? '') });
      if (ambiguous) { ambiguous = false; return reply(res, 504, 'GatewayTimeout'); }
      reply(res, 202);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    sent,
    throttleNext(n, seconds) { throttle = n; retryAfter = seconds; },
    ambiguousNext() { ambiguous = true; },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
