import { createHash, randomBytes } from 'node:crypto';
import { splitRelayTrace } from '../helpers/relayTrace.ts';
import type { AddressInfo, Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import {
  SMTPServer,
  type SMTPServerAddress,
  type SMTPServerAuthentication,
  type SMTPServerAuthenticationResponse,
  type SMTPServerDataStream,
  type SMTPServerOptions,
  type SMTPServerSession,
} from 'smtp-server';
import type { SMTPConnectionOptions } from 'smtp-server/lib/smtp-connection.js';
import { Directory, normalizeAddress } from './exchangeOnline/directory.ts';
import { applyExoDialect } from './exchangeOnline/exoDialect.ts';
import { FaultScript, type FaultStage } from './exchangeOnline/faults.ts';
import { fromHeaderAddresses } from './exchangeOnline/headers.ts';
import { ConcurrencyGate, RateWindow } from './exchangeOnline/limits.ts';
import { REPLIES, formatReply, replyError, type SmtpReply } from './exchangeOnline/replies.ts';
import type { AccessTokenVerifier } from './fakeTokenEndpoint.ts';
import { serverCert, serverKey } from './tlsFixtures.ts';

export type { FaultStage } from './exchangeOnline/faults.ts';
export { REPLIES, type SmtpReply } from './exchangeOnline/replies.ts';

/**
 * A stand-in for smtp.office365.com:587 client submission on 127.0.0.1 (port 0): STARTTLS with
 * the test server certificate (trust `caPem`), AUTH LOGIN and XOAUTH2 only inside TLS, EXO's
 * reply codes and texts for auth, send-as, unknown recipients, size, concurrency and rate.
 */

export const EXO_ADVERTISED_SIZE = 157_286_400;
export const EXO_MAX_MESSAGE_SIZE = 36_700_160;

export interface FakeExchangeOnlineOptions {
  /** Checks XOAUTH2 bearer tokens; pass the fake token endpoint. Without it every XOAUTH2 fails. */
  tokenVerifier?: AccessTokenVerifier;
  /** Basic auth (AUTH LOGIN) users and passwords. */
  basicUsers?: Record<string, string>;
  /** Basic auth switched off for the tenant: every AUTH LOGIN gets 535 5.7.139. */
  basicAuthDisabled?: boolean;
  /** Mailbox → addresses it may send as besides itself (SendAs grants). */
  sendAs?: Record<string, string[]>;
  /** Accepted domains; recipients there must be known (else 550 5.1.10), others are external. */
  internalDomains?: string[];
  /**
   * Known addresses. Basic users, sendAs keys and sendAs targets are known too. An XOAUTH2
   * `user=` in an internal domain must be known, or the AUTH fails with 535 5.7.3.
   */
  mailboxes?: string[];
  /** SIZE in EHLO; default 157286400 like EXO. */
  advertisedSize?: number;
  /** Real limit, checked at MAIL FROM SIZE= and after DATA; default 35 MB (36700160). */
  maxMessageSize?: number;
  /** Authenticated sessions per mailbox at once; default 3. */
  maxConnectionsPerMailbox?: number;
  /** Accepted messages per mailbox in a sliding 60 s window; unlimited when unset. */
  messagesPerMinute?: number;
  /** Clock (epoch ms) for the rate window; default Date.now. */
  now?: () => number;
  /** Server name in the greeting and EHLO; default `fake.outlook.office365.com`. */
  hostname?: string;
  /** Idle timeout per connection; default 60000. */
  socketTimeoutMs?: number;
  /**
   * Longest AUTH command line accepted, like servers that refuse a 1.5 KB `AUTH XOAUTH2 <token>`
   * line: longer ones get `500 5.5.6 Line too long`. The response on its own line after 334 is
   * not limited. Unlimited when unset.
   */
  maxAuthCommandLength?: number;
  /**
   * A slow upstream: every command (and the final dot of DATA) is answered this long after it
   * arrived. The greeting is not delayed. Default 0.
   */
  commandDelayMs?: number;
}

export type AuthMethod = 'XOAUTH2' | 'LOGIN';

export interface SessionAuth {
  method: AuthMethod;
  /** The mailbox as the client gave it (XOAUTH2 `user=`, LOGIN username). */
  user: string;
  /** XOAUTH2: the token's appid. */
  appId?: string;
}

export interface AuthAttempt {
  sessionId: string;
  /** What the client asked for; PLAIN and others never get here (504 from the server). */
  method: string;
  user: string;
  ok: boolean;
  /** The reply line sent. */
  reply: string;
  /** Why it failed, for test diagnostics. */
  reason?: string;
}

export interface CapturedMessage {
  /** Envelope sender, '' for the null sender. */
  mailFrom: string;
  /** Accepted recipients only. */
  rcptTo: string[];
  /** Exactly the bytes after dot-unstuffing, without the terminating `.` line. */
  raw: Buffer;
  /** The Received: field smarthost put on top of `raw` (its first field), when there is one. */
  relayTrace: string | undefined;
  /**
   * SHA-256 (lowercase hex) of `raw` without `relayTrace`: the message as the relay got it from
   * the device, which is what tests compare with what they sent.
   */
  sha256: string;
  auth: SessionAuth;
  receivedAt: Date;
  sessionId: string;
  /** The id given in the 250 reply to DATA. */
  queueId: string;
}

export interface FakeExchangeOnline {
  readonly host: '127.0.0.1';
  readonly port: number;
  /** Accepted messages, in order of acceptance. */
  readonly messages: readonly CapturedMessage[];
  /** SMTP sessions started (connections refused while down are not counted). */
  readonly connections: number;
  /** Connections destroyed at once because the fake was down. */
  readonly droppedConnections: number;
  readonly authAttempts: readonly AuthAttempt[];
  /** 432 replies sent (concurrency and rate). */
  readonly throttled: number;
  /** Most SMTP connections open at once. */
  readonly maxConcurrentSessions: number;
  /** Most authenticated sessions one mailbox had at once. */
  readonly maxConcurrentSessionsPerMailbox: number;
  /** Every 4xx/5xx reply line, in order, as handed to smtp-server. */
  readonly errorReplies: readonly string[];
  /** The next `times` commands reaching `stage` get `reply` (e.g. '451 4.7.500 Server busy'). */
  failNext(stage: FaultStage, reply: string, times?: number): void;
  /**
   * Like failNext, only for sessions authenticated as `mailbox` (e.g. one mailbox of a pool
   * throttled with 432 4.3.2 while the others deliver). Taken before the shared script.
   */
  failNextFor(mailbox: string, stage: 'mail' | 'rcpt' | 'data', reply: string, times?: number): void;
  /** Down: new TCP connections are closed at once, same port. Open sessions are left alone. */
  setDown(down: boolean): void;
  /**
   * SMTP sessions not yet closed (counted from the greeting until the fake has processed the
   * close), or with `mailbox` those authenticated as that mailbox (what the 432 limit counts).
   */
  activeSessions(mailbox?: string): number;
  /** Resolves once `n` messages in total were accepted; rejects after `timeoutMs` (default 5000). */
  waitForMessages(n: number, timeoutMs?: number): Promise<CapturedMessage[]>;
  /**
   * Resolves once `condition` holds, checked now and after every change of the fake's state
   * (connection opened or closed, AUTH, message accepted, error reply); rejects after `timeoutMs`
   * (default 5000) with `what` in the message. E.g. `exo.waitFor(() => exo.activeSessions() === 0)`.
   */
  waitFor(condition: () => boolean, timeoutMs?: number, what?: string): Promise<void>;
  /** Answers open sessions with 421, closes them and stops listening. */
  close(): Promise<void>;
}

interface SessionState {
  auth?: SessionAuth;
}

interface Waiter {
  condition: () => boolean;
  resolve: () => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
}

interface ConnectionHooks {
  isDown(): boolean;
  onDropped(): void;
  onConnection(server: ExoSmtpServer, socket: Socket | TLSSocket): void;
}

/** smtp-server with a hook at the point where it creates each connection. */
class ExoSmtpServer extends SMTPServer {
  private readonly hooks: ConnectionHooks;

  constructor(options: SMTPServerOptions, hooks: ConnectionHooks) {
    super(options);
    this.hooks = hooks;
  }

  override connect(socket: Socket | TLSSocket, socketOptions?: SMTPConnectionOptions | null): void {
    if (this.hooks.isDown()) {
      this.hooks.onDropped();
      socket.destroy();
      return;
    }
    super.connect(socket, socketOptions);
    this.hooks.onConnection(this, socket);
  }
}

export async function startFakeExchangeOnline(opts: FakeExchangeOnlineOptions = {}): Promise<FakeExchangeOnline> {
  const name = opts.hostname ?? 'fake.outlook.office365.com';
  const maxMessageSize = opts.maxMessageSize ?? EXO_MAX_MESSAGE_SIZE;
  const now = opts.now ?? Date.now;
  const directory = new Directory(opts);
  const faults = new FaultScript();
  /** Scripted replies for sessions authenticated as one mailbox (a pool's throttled member). */
  const mailboxFaults = new Map<string, FaultScript>();
  const gate = new ConcurrencyGate(opts.maxConnectionsPerMailbox ?? 3);
  const rate = opts.messagesPerMinute !== undefined ? new RateWindow(opts.messagesPerMinute, now) : undefined;

  const sessions = new Map<string, SessionState>();
  const messages: CapturedMessage[] = [];
  const authAttempts: AuthAttempt[] = [];
  const errorReplies: string[] = [];
  const waiters: Waiter[] = [];
  let connections = 0;
  let dropped = 0;
  let throttled = 0;
  let peakOpen = 0;
  let down = false;

  const stateOf = (session: SMTPServerSession): SessionState => {
    let state = sessions.get(session.id);
    if (!state) {
      state = {};
      sessions.set(session.id, state);
    }
    return state;
  };

  const fail = (reply: SmtpReply): Error => {
    if (reply.code === 432) throttled += 1;
    return replyError(reply);
  };

  const scripted = (stage: FaultStage, session?: SMTPServerSession): Error | undefined => {
    const user = session ? authOf(session)?.user : undefined;
    const reply = (user === undefined ? undefined : mailboxFaults.get(normalizeAddress(user))?.take(stage)) ?? faults.take(stage);
    return reply ? fail(reply) : undefined;
  };

  /** Re-checks every waitFor condition; called after each change of state. */
  function notify(): void {
    for (const w of [...waiters]) {
      let met: boolean;
      try {
        met = w.condition();
      } catch (err) {
        clearTimeout(w.timer);
        waiters.splice(waiters.indexOf(w), 1);
        w.reject(err instanceof Error ? err : new Error(String(err)));
        continue;
      }
      if (met) {
        clearTimeout(w.timer);
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve();
      }
    }
  }

  function waitFor(condition: () => boolean, timeoutMs = 5_000, what = 'condition'): Promise<void> {
    if (condition()) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        waiters.splice(waiters.indexOf(waiter), 1);
        reject(new Error(`fake Exchange Online: waited ${timeoutMs} ms for ${what}; ${messages.length} message(s) accepted, last error replies: ${JSON.stringify(errorReplies.slice(-5))}`));
      }, timeoutMs);
      const waiter: Waiter = { condition, resolve, reject, timer };
      waiters.push(waiter);
    });
  }

  function onConnect(session: SMTPServerSession, callback: (err?: Error | null) => void): void {
    connections += 1;
    sessions.set(session.id, {});
    callback(scripted('connect'));
    notify();
  }

  function authenticate(auth: SMTPServerAuthentication, session: SMTPServerSession): { ok: true; who: SessionAuth } | { ok: false; reply: SmtpReply; reason: string } {
    const user = auth.username ?? '';
    const fault = faults.take('auth');
    if (fault) return { ok: false, reply: fault, reason: 'scripted fault' };

    let who: SessionAuth;
    if (auth.method === 'LOGIN') {
      if (opts.basicAuthDisabled) return { ok: false, reply: REPLIES.basicDisabled, reason: 'basic auth disabled' };
      const expected = Object.entries(opts.basicUsers ?? {}).find(([u]) => normalizeAddress(u) === normalizeAddress(user))?.[1];
      if (expected === undefined || expected !== auth.password) {
        return { ok: false, reply: REPLIES.authFailed, reason: expected === undefined ? 'unknown basic user' : 'wrong password' };
      }
      who = { method: 'LOGIN', user };
    } else if (auth.method === 'XOAUTH2') {
      if (!opts.tokenVerifier) return { ok: false, reply: REPLIES.authFailed, reason: 'no tokenVerifier configured' };
      const verdict = opts.tokenVerifier.verifyAccessToken(auth.accessToken ?? '');
      if (!verdict.ok) return { ok: false, reply: REPLIES.authFailed, reason: verdict.reason };
      if (!directory.recipientExists(user)) return { ok: false, reply: REPLIES.authFailed, reason: `mailbox ${user} not found` };
      who = { method: 'XOAUTH2', user, appId: verdict.claims.appid };
    } else {
      return { ok: false, reply: REPLIES.unknownMechanism, reason: `mechanism ${auth.method} not offered` };
    }

    if (!gate.tryAcquire(who.user, session.id)) {
      return { ok: false, reply: REPLIES.concurrency, reason: `mailbox ${who.user} already has ${gate.active(who.user)} sessions` };
    }
    return { ok: true, who };
  }

  function onAuth(
    auth: SMTPServerAuthentication,
    session: SMTPServerSession,
    callback: (err: Error | null | undefined, response?: SMTPServerAuthenticationResponse) => void,
  ): void {
    const outcome = authenticate(auth, session);
    const attempt: AuthAttempt = {
      sessionId: session.id,
      method: auth.method,
      user: auth.username ?? '',
      ok: outcome.ok,
      reply: formatReply(outcome.ok ? REPLIES.authOk : outcome.reply),
    };
    if (!outcome.ok) {
      attempt.reason = outcome.reason;
      authAttempts.push(attempt);
      callback(fail(outcome.reply));
      notify();
      return;
    }
    authAttempts.push(attempt);
    stateOf(session).auth = outcome.who;
    callback(null, { user: outcome.who });
    notify();
  }

  function authOf(session: SMTPServerSession): SessionAuth | undefined {
    return sessions.get(session.id)?.auth;
  }

  function onMailFrom(address: SMTPServerAddress, session: SMTPServerSession, callback: (err?: Error | null) => void): void {
    const fault = scripted('mail', session);
    if (fault) return callback(fault);
    const auth = authOf(session);
    if (!auth) return callback(fail(REPLIES.notAuthenticated));
    const size = address.args ? address.args.SIZE : undefined;
    if (typeof size === 'string' && Number(size) > maxMessageSize) return callback(fail(REPLIES.tooBig));
    if (!directory.maySendAs(auth.user, address.address)) return callback(fail(REPLIES.sendAsDenied));
    callback();
  }

  function onRcptTo(address: SMTPServerAddress, session: SMTPServerSession, callback: (err?: Error | null) => void): void {
    const fault = scripted('rcpt', session);
    if (fault) return callback(fault);
    if (!directory.recipientExists(address.address)) return callback(fail(REPLIES.recipientNotFound));
    callback();
  }

  function onData(stream: SMTPServerDataStream, session: SMTPServerSession, callback: (err?: Error | null, message?: string) => void): void {
    const chunks: Buffer[] = [];
    let bytes = 0;
    stream.on('data', (chunk: Buffer) => {
      bytes += chunk.length;
      if (bytes <= maxMessageSize) chunks.push(chunk);
    });
    stream.on('error', () => undefined);
    const answer = (): void => {
      const fault = scripted('data', session);
      if (fault) return callback(fault);
      if (bytes > maxMessageSize) return callback(fail(REPLIES.tooBig));
      const auth = authOf(session);
      if (!auth) return callback(fail(REPLIES.notAuthenticated));
      const raw = Buffer.concat(chunks);
      if (!fromHeaderAddresses(raw).every((a) => directory.maySendAs(auth.user, a))) return callback(fail(REPLIES.sendAsDenied));
      if (rate && !rate.tryConsume(auth.user)) return callback(fail(REPLIES.rate));

      const envelope = session.envelope;
      const queueId = `${randomBytes(16).toString('hex').toUpperCase()}@${name}`;
      messages.push({
        mailFrom: envelope.mailFrom ? envelope.mailFrom.address : '',
        rcptTo: envelope.rcptTo.map((r) => r.address),
        raw,
        ...splitRelayTraceOf(raw, envelope.mailFrom ? envelope.mailFrom.address : ''),
        auth: { ...auth },
        receivedAt: new Date(now()),
        sessionId: session.id,
        queueId,
      });
      callback(null, `2.0.0 OK <${queueId}> [Hostname=${name}] Queued mail for delivery`);
      notify();
    };
    stream.on('end', () => (opts.commandDelayMs ? void setTimeout(answer, opts.commandDelayMs) : answer()));
  }

  function onClose(session: SMTPServerSession): void {
    const auth = sessions.get(session.id)?.auth;
    if (auth) gate.release(auth.user, session.id);
    sessions.delete(session.id);
    notify();
  }

  const server = new ExoSmtpServer(
    {
      name,
      heloResponse: '%s Hello %s',
      key: serverKey,
      cert: serverCert,
      minVersion: 'TLSv1.2',
      size: opts.advertisedSize ?? EXO_ADVERTISED_SIZE,
      authMethods: ['LOGIN', 'XOAUTH2'],
      authRequiredMessage: REPLIES.notAuthenticated.text,
      hideENHANCEDSTATUSCODES: false,
      hideDSN: false,
      disableReverseLookup: true,
      maxAllowedUnauthenticatedCommands: false,
      socketTimeout: opts.socketTimeoutMs ?? 60_000,
      closeTimeout: 2_000,
      logger: false,
      onConnect,
      onAuth,
      onMailFrom,
      onRcptTo,
      onData,
      onClose,
    },
    {
      isDown: () => down,
      onDropped: () => {
        dropped += 1;
      },
      onConnection: (srv, socket) => {
        peakOpen = Math.max(peakOpen, srv.connections.size);
        for (const conn of srv.connections) {
          if (conn._socket === socket) {
            applyExoDialect(conn, {
              onErrorReply: (line) => {
                errorReplies.push(line);
                notify();
              },
            });
            if (opts.maxAuthCommandLength !== undefined) {
              limitAuthLine(conn, opts.maxAuthCommandLength);
            }
            if (opts.commandDelayMs) {
              delayCommands(conn, opts.commandDelayMs);
            }
            break;
          }
        }
      },
    },
  );
  // Connection-level errors (a client resetting mid-session) are expected in tests.
  server.on('error', () => undefined);

  await new Promise<void>((resolve, reject) => {
    server.server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.server.off('error', reject);
      resolve();
    });
  });
  const port = (server.server.address() as AddressInfo).port;

  return {
    host: '127.0.0.1',
    port,
    messages,
    get connections() {
      return connections;
    },
    get droppedConnections() {
      return dropped;
    },
    authAttempts,
    get throttled() {
      return throttled;
    },
    get maxConcurrentSessions() {
      return peakOpen;
    },
    get maxConcurrentSessionsPerMailbox() {
      return gate.maxObserved;
    },
    errorReplies,
    failNext(stage: FaultStage, reply: string, times = 1) {
      faults.add(stage, reply, times);
    },
    failNextFor(mailbox: string, stage: 'mail' | 'rcpt' | 'data', reply: string, times = 1) {
      const key = normalizeAddress(mailbox);
      let script = mailboxFaults.get(key);
      if (!script) mailboxFaults.set(key, (script = new FaultScript()));
      script.add(stage, reply, times);
    },
    setDown(value: boolean) {
      down = value;
    },
    activeSessions(mailbox?: string) {
      return mailbox === undefined ? sessions.size : gate.active(mailbox);
    },
    async waitForMessages(n: number, timeoutMs = 5_000) {
      await waitFor(() => messages.length >= n, timeoutMs, `${n} message(s)`);
      return messages.slice();
    },
    waitFor,
    close() {
      for (const w of waiters.splice(0)) {
        clearTimeout(w.timer);
        w.reject(new Error('fake Exchange Online closed while a waitFor was pending'));
      }
      return new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const conn of server.connections) conn.send(421, '4.3.2 Service not available, closing transmission channel');
      });
    },
  };
}

/** Handles each command `delayMs` after it arrived (smtp-server reads the next one only after). */
function delayCommands(conn: { _onCommand(command: Buffer, callback?: () => void): void }, delayMs: number): void {
  const handle = conn._onCommand.bind(conn);
  conn._onCommand = (command, callback) => {
    setTimeout(() => handle(command, callback), delayMs);
  };
}

/** Refuses AUTH command lines (not continuation lines) longer than `limit` bytes. */
function limitAuthLine(conn: { handler_AUTH(command: Buffer, callback: () => void): void; send(code: number, data: string, context: false): void }, limit: number): void {
  const handle = conn.handler_AUTH.bind(conn);
  conn.handler_AUTH = (command, callback) => {
    if (command.length > limit) {
      conn.send(500, '5.5.6 Line too long', false);
      callback();
      return;
    }
    handle(command, callback);
  };
}

function splitRelayTraceOf(raw: Buffer, mailFrom: string): { relayTrace: string | undefined; sha256: string } {
  const { trace, message } = splitRelayTrace(raw, mailFrom);
  return { relayTrace: trace, sha256: createHash('sha256').update(message).digest('hex') };
}
