import type { KeyObject } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { decodeJwt, verifyJwtSignature } from './jwt.ts';

/**
 * A Microsoft Graph mail endpoint over HTTP on 127.0.0.1, written from Microsoft's documentation
 * (user: sendMail, "Send Outlook messages in MIME format", mailFolder: list messages, throttling
 * limits for Outlook resources), independent of the relay's own constants:
 * - token: RS256 signature (when `publicKey` is given), expiry, audience https://graph.microsoft.com
 *   (401 InvalidAuthenticationToken); the app may use a mailbox with the Mail.Send role in its
 *   token (Entra consent, tenant-wide unless an application access policy limits it) or through an
 *   RBAC for Applications assignment covering the mailbox (nothing in the token); else 403 ErrorAccessDenied;
 * - sendMail: base64 MIME with Content-Type text/plain, 4 MB per request (413), unknown mailbox
 *   404 ErrorInvalidUser, a From the mailbox may not send as 403 ErrorSendAsDenied, 202 with no body;
 * - per app and mailbox: 4 concurrent requests, 10,000 requests per 10 minutes, 150 MB of upload
 *   per 5 minutes; past them 429 ApplicationThrottled with Retry-After;
 * - optionally Exchange Online's own message rate per mailbox (30 a minute), which applies to
 *   Graph's sendMail as to SMTP: a sendMail past it in a sliding 60 s answers 429 with Retry-After;
 * - Sent Items: a message sent with saveToSentItems (the default) is found by
 *   `GET /users/{id}/mailFolders/SentItems/messages?$filter=internetMessageId eq '<...>'` with
 *   Mail.ReadBasic.All, Mail.Read or Mail.ReadWrite.
 */

export const FAKE_GRAPH_MAX_REQUEST_BYTES = 4 * 1024 * 1024;
export const GRAPH_RESOURCE = 'https://graph.microsoft.com';
export const MAIL_SEND_ROLE = 'Mail.Send';
export const MAIL_READ_ROLES = ['Mail.ReadBasic.All', 'Mail.Read', 'Mail.ReadWrite'] as const;

/** Graph's Outlook limits per app and mailbox (throttling-limits#outlook-service-limits). */
export const FAKE_GRAPH_LIMITS = { concurrent: 4, requests: 10_000, requestsWindowMs: 600_000, uploadBytes: 150_000_000, uploadWindowMs: 300_000 };

export interface FakeGraphSent {
  mailbox: string;
  appId: string;
  mime: Buffer;
  saveToSentItems: boolean;
  internetMessageId: string | undefined;
  at: number;
}

export interface FakeGraphRequest {
  method: string;
  path: string;
  mailbox: string | undefined;
  appId: string | undefined;
  status: number;
  at: number;
  /** Requests of this app to this mailbox being served when this one came in, itself included. */
  concurrent: number;
  bytes: number;
}

export interface FakeGraphOptions {
  mailboxes: string[];
  /** Verify token signatures with this key (the key the test's tokens are signed with). */
  publicKey?: KeyObject;
  /** appId → mailboxes an RBAC for Applications "Application Mail.Send" assignment covers. */
  rbac?: Record<string, string[]>;
  /** appId → the only mailboxes an application access policy lets a tenant-wide Mail.Send reach. */
  accessPolicy?: Record<string, string[]>;
  /** mailbox → the From addresses it may send as besides its own; absent: any. */
  sendAs?: Record<string, string[]>;
  /** Graph's limits per app and mailbox, smaller for tests. */
  limits?: Partial<typeof FAKE_GRAPH_LIMITS>;
  /** Seconds in Retry-After when a limit is hit. */
  retryAfterSeconds?: number;
  /** Messages sent per mailbox in a sliding 60 s (Exchange Online: 30); unlimited when unset. */
  messagesPerMinute?: number;
  /** Hold every answer this long (so concurrency can be seen). */
  responseDelayMs?: number;
}

export interface FakeGraph {
  readonly url: string;
  readonly sent: FakeGraphSent[];
  readonly requests: FakeGraphRequest[];
  /** The next n requests get 429 (or 503) with Retry-After. */
  throttleNext(n: number, retryAfterSeconds: number, status?: 429 | 503): void;
  /**
   * The next sendMail is taken (recorded as sent) and then answered 504, as Graph's gateway may,
   * or not answered at all (`hang`: the client times out).
   */
  ambiguousNext(kind?: '504' | 'hang'): void;
  /** The next n requests fail with this status and Graph error code. */
  failNext(n: number, status: number, code: string): void;
  close(): Promise<void>;
}

export async function startFakeGraph(opts: FakeGraphOptions): Promise<FakeGraph> {
  const limits = { ...FAKE_GRAPH_LIMITS, ...opts.limits };
  const retryAfter = String(opts.retryAfterSeconds ?? 1);
  const sent: FakeGraphSent[] = [];
  const requests: FakeGraphRequest[] = [];
  const active = new Map<string, number>();
  const history = new Map<string, { at: number; bytes: number }[]>();
  let throttle = { n: 0, seconds: 1, status: 429 };
  let failure = { n: 0, status: 500, code: '' };
  let ambiguous: '504' | 'hang' | undefined;
  const sockets = new Set<Socket>();
  const known = new Set(opts.mailboxes.map((m) => m.toLowerCase()));
  const sentAt = new Map<string, number[]>();

  const reply = (res: ServerResponse, status: number, code?: string, message?: string, headers: Record<string, string> = {}) => {
    res.writeHead(status, { 'content-type': 'application/json', ...headers });
    res.end(code ? JSON.stringify({ error: { code, message: message ?? code } }) : undefined);
  };

  const handle = (req: IncomingMessage, res: ServerResponse, body: Buffer, size: number, record: FakeGraphRequest) => {
    const url = new URL(req.url ?? '/', 'http://graph.invalid');
    const send = /^\/v1\.0\/users\/([^/]+)\/sendMail$/.exec(url.pathname);
    const list = /^\/v1\.0\/users\/([^/]+)\/mailFolders\/SentItems\/messages$/i.exec(url.pathname);
    const answer = (status: number, code?: string, message?: string, headers?: Record<string, string>) => {
      record.status = status;
      const go = () => reply(res, status, code, message, headers);
      if (opts.responseDelayMs) setTimeout(go, opts.responseDelayMs);
      else go();
    };
    if (!(send && req.method === 'POST') && !(list && req.method === 'GET')) return answer(404, 'ResourceNotFound', 'Resource not found for the segment.');
    const token = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
    const decoded = token ? decodeJwt(token) : null;
    const claims = decoded?.payload;
    if (!decoded || !claims) return answer(401, 'InvalidAuthenticationToken', 'IDX14100: JWT is not well formed.');
    if (opts.publicKey && !verifyJwtSignature(decoded, 'RS256', opts.publicKey)) return answer(401, 'InvalidAuthenticationToken', 'Access token validation failure.');
    if (typeof claims.exp === 'number' && claims.exp * 1000 <= Date.now()) return answer(401, 'InvalidAuthenticationToken', 'Lifetime validation failed, the token is expired.');
    if (claims.aud !== GRAPH_RESOURCE) return answer(401, 'InvalidAuthenticationToken', 'Access token validation failure. Invalid audience.');
    const appId = typeof claims.appid === 'string' ? claims.appid : typeof claims.azp === 'string' ? claims.azp : '';
    const roles = Array.isArray(claims.roles) ? claims.roles.filter((r): r is string => typeof r === 'string') : [];
    const mailbox = decodeURIComponent((send ?? list)?.[1] ?? '');
    record.mailbox = mailbox;
    record.appId = appId;
    if (!known.has(mailbox.toLowerCase())) return answer(404, 'ErrorInvalidUser', `The requested user '${mailbox}' is invalid.`);

    // Per app and mailbox: the request counts whatever becomes of it.
    const key = `${appId}|${mailbox.toLowerCase()}`;
    const now = Date.now();
    const seen = (history.get(key) ?? []).filter((h) => h.at > now - Math.max(limits.requestsWindowMs, limits.uploadWindowMs));
    const inRequests = seen.filter((h) => h.at > now - limits.requestsWindowMs).length;
    const uploaded = seen.filter((h) => h.at > now - limits.uploadWindowMs).reduce((sum, h) => sum + h.bytes, 0);
    seen.push({ at: now, bytes: size });
    history.set(key, seen);
    if (throttle.n > 0) {
      throttle.n--;
      return answer(throttle.status, throttle.status === 429 ? 'ApplicationThrottled' : 'ServiceUnavailable', 'Application is over its MailboxConcurrency limit.', { 'retry-after': String(throttle.seconds) });
    }
    if (record.concurrent > limits.concurrent) return answer(429, 'ApplicationThrottled', 'Application is over its MailboxConcurrency limit.', { 'retry-after': retryAfter });
    if (inRequests >= limits.requests) return answer(429, 'ApplicationThrottled', 'Application is over its limit of requests per 10 minutes.', { 'retry-after': retryAfter });
    if (uploaded + size > limits.uploadBytes) return answer(429, 'ApplicationThrottled', 'Application is over its upload limit of 150 MB per 5 minutes.', { 'retry-after': retryAfter });
    if (failure.n > 0) {
      failure.n--;
      return answer(failure.status, failure.code);
    }

    const mayUse = roles.includes(MAIL_SEND_ROLE)
      ? !opts.accessPolicy?.[appId] || opts.accessPolicy[appId].some((m) => m.toLowerCase() === mailbox.toLowerCase())
      : (opts.rbac?.[appId] ?? []).some((m) => m.toLowerCase() === mailbox.toLowerCase());

    if (list) {
      if (!roles.some((r) => (MAIL_READ_ROLES as readonly string[]).includes(r))) return answer(403, 'ErrorAccessDenied', 'Access is denied. Check credentials and try again.');
      const filter = /^internetMessageId eq '((?:[^']|'')*)'$/.exec(url.searchParams.get('$filter') ?? '');
      if (!filter) return answer(400, 'BadRequest', 'Invalid filter clause');
      const id = (filter[1] ?? '').replace(/''/g, "'");
      const value = sent
        .filter((m) => m.mailbox.toLowerCase() === mailbox.toLowerCase() && m.saveToSentItems && m.internetMessageId === id)
        .map((m, i) => ({ id: `AAMk-sent-${i}`, internetMessageId: m.internetMessageId }));
      record.status = 200;
      const go = () => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ '@odata.context': 'fake', value }));
      };
      if (opts.responseDelayMs) setTimeout(go, opts.responseDelayMs);
      else go();
      return;
    }

    if (!mayUse) return answer(403, 'ErrorAccessDenied', 'Access is denied. Check credentials and try again.');
    if (size > FAKE_GRAPH_MAX_REQUEST_BYTES) return answer(413, 'ErrorMessageSizeExceeded', 'The message exceeds the maximum supported size.');
    if (!/^text\/plain/.test(req.headers['content-type'] ?? '')) return answer(400, 'ErrorMimeContentInvalid', 'The MIME content is invalid.');
    const text = body.toString('ascii');
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text)) return answer(400, 'ErrorMimeContentInvalidBase64String', 'Invalid base64 string for MIME content.');
    const mime = Buffer.from(text, 'base64');
    const from = /^from:[^\r\n]*?<?([^\s<>@]+@[^\s<>]+?)>?\s*$/im.exec(headerOf(mime))?.[1];
    const allowed = opts.sendAs?.[mailbox.toLowerCase()] ?? opts.sendAs?.[mailbox];
    if (opts.sendAs && from && from.toLowerCase() !== mailbox.toLowerCase() && !(allowed ?? []).some((a) => a.toLowerCase() === from.toLowerCase())) {
      return answer(403, 'ErrorSendAsDenied', `The user account which was used to submit this request does not have the right to send mail on behalf of the specified sending account.`);
    }
    if (opts.messagesPerMinute !== undefined) {
      const recent = (sentAt.get(mailbox.toLowerCase()) ?? []).filter((at) => at > now - 60_000);
      sentAt.set(mailbox.toLowerCase(), recent);
      if (recent.length >= opts.messagesPerMinute) {
        return answer(429, 'ApplicationThrottled', `The mailbox is over its limit of ${opts.messagesPerMinute} messages per minute.`, { 'retry-after': retryAfter });
      }
      recent.push(now);
    }
    const saveToSentItems = url.searchParams.get('saveToSentItems') !== 'false';
    sent.push({ mailbox, appId, mime, saveToSentItems, internetMessageId: /^message-id:[ \t]*(<[^>\r\n]+>)/im.exec(headerOf(mime))?.[1], at: Date.now() });
    if (ambiguous === 'hang') {
      ambiguous = undefined;
      record.status = 0;
      return; // taken, never answered
    }
    if (ambiguous === '504') {
      ambiguous = undefined;
      return answer(504, 'GatewayTimeout', 'The gateway did not receive a timely response.');
    }
    answer(202);
  };

  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const url = new URL(req.url ?? '/', 'http://graph.invalid');
    const mailboxSegment = /^\/v1\.0\/users\/([^/]+)\//.exec(url.pathname)?.[1];
    const claims = decodeJwt(/^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1] ?? '')?.payload;
    const key = `${typeof claims?.appid === 'string' ? claims.appid : ''}|${decodeURIComponent(mailboxSegment ?? '').toLowerCase()}`;
    const concurrent = (active.get(key) ?? 0) + 1;
    active.set(key, concurrent);
    res.on('close', () => active.set(key, (active.get(key) ?? 1) - 1));
    const record: FakeGraphRequest = { method: req.method ?? '', path: url.pathname, mailbox: undefined, appId: undefined, status: 0, at: Date.now(), concurrent, bytes: 0 };
    requests.push(record);
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size <= FAKE_GRAPH_MAX_REQUEST_BYTES) chunks.push(c);
    });
    req.on('end', () => {
      record.bytes = size;
      handle(req, res, Buffer.concat(chunks), size, record);
    });
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    sent,
    requests,
    throttleNext(n, seconds, status = 429) {
      throttle = { n, seconds, status };
    },
    ambiguousNext(kind = '504') {
      ambiguous = kind;
    },
    failNext(n, status, code) {
      failure = { n, status, code };
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

function headerOf(mime: Buffer): string {
  const text = mime.subarray(0, Math.min(mime.length, 64 * 1024)).toString('latin1');
  const end = text.indexOf('\r\n\r\n');
  return (end === -1 ? text : text.slice(0, end)).replace(/\r\n[ \t]+/g, ' ');
}
