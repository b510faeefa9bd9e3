import { once } from 'node:events';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { readFileSync } from 'node:fs';
import type { AddressInfo, Socket } from 'node:net';
import { Readable } from 'node:stream';
import type { Logger } from '../logger.ts';
import type { StatusConfig } from '../config/agentConfigSchema.ts';
import { cipherList } from '../intake/tlsSuites.ts';
import { authenticate, challenge, type Principal } from './auth.ts';
import { parseTarget, type RequestTarget } from './requestTarget.ts';

/** Bounds that keep slow, many or large requests from costing the relay anything that matters. */
export const STATUS_LIMITS = {
  /** A client must send its whole header section within this (slowloris): 408 after. */
  headersTimeoutMs: 10_000,
  /** ...and the whole request within this. */
  requestTimeoutMs: 20_000,
  keepAliveTimeoutMs: 5_000,
  /** How often Node looks for requests past those timeouts. */
  timeoutCheckMs: 1_000,
  /** Node answers 431 beyond this. */
  maxHeaderBytes: 16 * 1024,
  /** A console form is a few hundred bytes: 413 beyond this. */
  maxBodyBytes: 8 * 1024,
  /** Open connections at once; more are closed at accept. */
  maxConnections: 64,
};

export type StatusLimits = typeof STATUS_LIMITS;

export interface HttpReply {
  status: number;
  headers?: Record<string, string>;
  body: string | Buffer | Readable;
}

export interface StatusRequest {
  method: string;
  target: RequestTarget;
  /** Values of the path's `:name` segments. */
  params: Record<string, string>;
  principal: Principal;
  ip: string;
  /** A POST's url-encoded form. */
  form: URLSearchParams;
  headers: IncomingMessage['headers'];
}

export type RouteHandler = (request: StatusRequest) => Promise<HttpReply> | HttpReply;

export interface Route {
  /** Path segments; `:name` matches one segment that `paramPattern` accepts. */
  path: string[];
  methods: Partial<Record<'GET' | 'POST', RouteHandler>>;
  /** Health checks: answered without a credential (they tell nothing but ok / not ok). */
  open?: boolean;
}

/** What a `:name` segment may be: message ids are the spool's own shape, nothing else reaches a path. */
const PARAM_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;

const SECURITY_HEADERS: Record<string, string> = {
  'x-content-type-options': 'nosniff',
  // same-origin, not no-referrer: with no-referrer a browser posts the console's forms with `Origin: null`.
  'referrer-policy': 'same-origin',
  'x-frame-options': 'DENY',
  'cache-control': 'no-store',
  'content-security-policy': "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
};

export function textReply(status: number, text: string, headers: Record<string, string> = {}): HttpReply {
  return { status, headers: { 'content-type': 'text/plain; charset=utf-8', ...headers }, body: `${text}\n` };
}

/**
 * The agent's HTTP listener (status.host:status.port): node:http, no framework, because it
 * serves a handful of routes and every limit should be visible here. Health checks, metrics and
 * the console are routes given to it.
 */
export class StatusServer {
  private readonly server: Server;
  /** Requests whose handler is still running; close() waits for them. */
  private readonly handling = new Set<Promise<void>>();
  private readonly sockets = new Set<Socket>();

  constructor(
    private readonly config: StatusConfig,
    private readonly routes: Route[],
    private readonly logger: Logger,
    private readonly limits: StatusLimits = STATUS_LIMITS,
  ) {
    const options = {
      maxHeaderSize: limits.maxHeaderBytes,
      headersTimeout: limits.headersTimeoutMs,
      requestTimeout: limits.requestTimeoutMs,
      keepAliveTimeout: limits.keepAliveTimeoutMs,
      connectionsCheckingInterval: limits.timeoutCheckMs,
    };
    const handler = (req: IncomingMessage, res: ServerResponse) => {
      const handling = this.handle(req, res)
        .catch((error: unknown) => {
          this.logger.error({ err: String(error), path: req.url?.slice(0, 200) }, 'status request failed');
          if (!res.headersSent) this.send(res, textReply(500, 'Internal error; see the agent log.'));
          else res.destroy();
        })
        .finally(() => this.handling.delete(handling));
      this.handling.add(handling);
    };
    const tls = config.tls;
    this.server = tls
      ? createHttpsServer({ ...options, cert: readFileSync(tls.cert, 'utf8'), key: readFileSync(tls.key, 'utf8'), minVersion: tls.minVersion, ciphers: cipherList(tls.minVersion) }, handler)
      : createHttpServer(options, handler);
    this.server.maxConnections = limits.maxConnections;
    this.server.on('connection', (socket: Socket) => {
      this.sockets.add(socket);
      socket.once('close', () => this.sockets.delete(socket));
    });
    this.server.on('clientError', (error: NodeJS.ErrnoException, socket) => {
      // Node's own answers to malformed requests (400, 408 for a slow header section, 431).
      if (!socket.writable) return;
      const code = error.code === 'ERR_HTTP_REQUEST_TIMEOUT' || error.code === 'ERR_HTTP_HEADERS_TIMEOUT' ? 408 : error.code === 'HPE_HEADER_OVERFLOW' ? 431 : 400;
      const reason = code === 408 ? 'Request Timeout' : code === 431 ? 'Request Header Fields Too Large' : 'Bad Request';
      socket.end(`HTTP/1.1 ${code} ${reason}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
    });
  }

  async listen(): Promise<AddressInfo> {
    this.server.listen(this.config.port, this.config.host);
    await once(this.server, 'listening');
    return this.server.address() as AddressInfo;
  }

  get listening(): boolean {
    return this.server.listening;
  }

  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const socket of this.sockets) socket.destroy();
    // A page still reading the spool would otherwise go on after stop() returned (and the spool closed).
    await Promise.allSettled([...this.handling]);
    await closed;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const target = parseTarget(req.url);
    if (!target) return this.send(res, textReply(400, 'Bad request path.'));
    const found = this.match(target.segments);
    if (!found) return this.send(res, textReply(404, 'Not found.'));
    const { route, params } = found;
    const method = req.method === 'HEAD' ? 'GET' : (req.method ?? '');
    const handler = (route.methods as Record<string, RouteHandler | undefined>)[method];
    if (!handler) {
      const allow = Object.keys(route.methods).flatMap((m) => (m === 'GET' ? ['GET', 'HEAD'] : [m])).join(', ');
      return this.send(res, textReply(405, 'Method not allowed.', { allow }));
    }
    const principal = route.open ? { name: 'anyone', authenticated: false } : authenticate(req, this.config.auth);
    if (!principal) {
      return this.send(res, textReply(401, 'Credentials required (status.auth).', { 'www-authenticate': challenge(this.config.auth) }));
    }
    let form = new URLSearchParams();
    if (method === 'POST') {
      const body = await readBody(req, this.limits.maxBodyBytes);
      if (body === undefined) return this.send(res, textReply(413, `Request body larger than ${this.limits.maxBodyBytes} bytes.`, { connection: 'close' }));
      form = new URLSearchParams(body);
    }
    const reply = await handler({ method, target, params, principal, ip: req.socket.remoteAddress ?? '', form, headers: req.headers });
    this.send(res, reply, req.method === 'HEAD');
  }

  private match(segments: string[]): { route: Route; params: Record<string, string> } | undefined {
    for (const route of this.routes) {
      if (route.path.length !== segments.length) continue;
      const params: Record<string, string> = {};
      let ok = true;
      route.path.forEach((part, i) => {
        const given = segments[i] as string;
        if (part.startsWith(':')) {
          if (PARAM_PATTERN.test(given)) params[part.slice(1)] = given;
          else ok = false;
        } else if (part !== given) ok = false;
      });
      if (ok) return { route, params };
    }
    return undefined;
  }

  private send(res: ServerResponse, reply: HttpReply, headOnly = false): void {
    res.writeHead(reply.status, { ...SECURITY_HEADERS, ...reply.headers });
    if (headOnly) {
      if (reply.body instanceof Readable) reply.body.destroy();
      res.end();
    } else if (reply.body instanceof Readable) {
      reply.body.on('error', () => res.destroy());
      reply.body.pipe(res);
    } else {
      res.end(reply.body);
    }
  }
}

/** The request body as text, or undefined when it is over `limit` bytes (then 413 and the connection closes). */
async function readBody(req: IncomingMessage, limit: number): Promise<string | undefined> {
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > limit) {
    req.resume();
    return undefined;
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) {
      req.resume();
      return undefined;
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}
