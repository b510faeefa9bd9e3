import { EventEmitter, once } from 'node:events';
import { timingSafeEqual } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { SMTPServer, type SMTPServerAddress, type SMTPServerAuthentication, type SMTPServerDataStream, type SMTPServerSession } from 'smtp-server';
import type { Logger } from 'pino';
import type { MessageEnvelope } from '../../contract/messageEnvelope.ts';
import type { Spool } from '../spool/spool.ts';
import { SmtpReplyError } from '../smtpReplyError.ts';
import { AuthThrottle } from './authThrottle.ts';
import { ClientAccess, type ClientRule } from './clientAccess.ts';
import { installSmtpServerPatches } from './smtp-server-patches/index.ts';
import { LineEndingGuard, type BareNewlinePolicy } from './lineEndings.ts';
import { HeaderLineLimit } from './headerLines.ts';
import { NulByteGuard, type NulBytePolicy } from './nulBytes.ts';
import { ProgressDeadlines } from './progressDeadline.ts';
import { SendAsHeaderCheck } from './sendAsHeaderCheck.ts';
import { SizeLimit } from './sizeLimit.ts';
import { cipherList, isTlsError, type TlsMinVersion } from './tlsSuites.ts';

export interface IntakeOptions {
  host: string;
  port: number;
  maxMessageSize: number;
  maxRecipients: number;
  bareNewlines: BareNewlinePolicy;
  nulBytes: NulBytePolicy;
  tls?: { cert: string; key: string; minVersion: TlsMinVersion };
  maxConnections: number;
  maxConnectionsPerClient: number;
  idleTimeoutMs: number;
  clients: ClientRule[];
  allowedDomains?: string[];
  /** Name in the banner and EHLO reply. */
  hostname?: string;
}

/** Why a device was turned away, as a metric label: a short, fixed set. */
export type RefusalReason =
  | 'not_allowed'
  | 'too_many_connections'
  | 'shutting_down'
  | 'auth_failed'
  | 'auth_required'
  | 'sender_domain'
  | 'spool_full'
  | 'size'
  | 'content'
  | 'storage'
  | 'other';

/** What the intake tells whoever watches it (metrics, the console); nobody listening costs nothing. */
export type IntakeEvents = { accepted: [MessageEnvelope]; refused: [RefusalReason] };

interface SessionInfo {
  rule: ClientRule;
  ip: string;
}

/**
 * The SMTP server devices talk to. It decides who may relay, enforces the limits, streams each
 * body into the spool, and answers 250 only once the spool has made the message durable.
 */
export class SmtpIntake extends EventEmitter<IntakeEvents> {
  private readonly server: SMTPServer;
  private readonly access: ClientAccess;
  private readonly sessions = new Map<string, SessionInfo>();
  private readonly perClient = new Map<string, number>();
  private readonly authThrottle = new AuthThrottle();
  private readonly allowedDomains: Set<string> | undefined;
  private readonly deadlines: ProgressDeadlines;
  /** Sessions whose message the spool is committing: the client waits for us, not the reverse. */
  private readonly committing = new Set<string>();
  private closing = false;
  private inFlight = 0;
  private drained: (() => void) | undefined;

  constructor(
    private readonly options: IntakeOptions,
    private readonly spool: Spool,
    private readonly logger: Logger,
    private readonly onAccepted: (envelope: MessageEnvelope) => void,
  ) {
    super();
    installSmtpServerPatches(logger);
    this.access = new ClientAccess(options.clients);
    // Twice the idle timeout: a silent client meets smtp-server's idle timeout first, with its reply.
    this.deadlines = new ProgressDeadlines(options.idleTimeoutMs * 2, (id) => this.noProgress(id));
    this.allowedDomains = options.allowedDomains?.length ? new Set(options.allowedDomains.map((d) => d.toLowerCase())) : undefined;
    const tls = options.tls;
    this.server = new SMTPServer({
      name: options.hostname,
      banner: 'smarthost ready',
      // LAN devices have no PTR records and a slow resolver would delay every banner.
      disableReverseLookup: true,
      logger: false,
      size: options.maxMessageSize,
      // The agent counts connections itself (admit), with an enhanced status code and without
      // smtp-server's reply naming this host. smtp-server's own count also holds connections
      // being refused and closed, so under a flood it would answer first; this is only a
      // backstop that keeps descriptors bounded.
      maxClients: options.maxConnections * 10,
      socketTimeout: options.idleTimeoutMs,
      closeTimeout: 30_000,
      authOptional: true,
      // Printers that authenticate mostly cannot do TLS; the LAN is the trust boundary here.
      allowInsecureAuth: true,
      authMethods: ['PLAIN', 'LOGIN'],
      hideSTARTTLS: !tls,
      // Hiding STARTTLS does not refuse it: without this smtp-server would still upgrade a client
      // that asks, using its built-in certificate whose private key is public.
      disabledCommands: tls ? [] : ['STARTTLS'],
      ...(tls
        ? {
            key: tls.key,
            cert: tls.cert,
            minVersion: tls.minVersion,
            ciphers: cipherList(tls.minVersion),
          }
        : {}),
      onConnect: (session, callback) => callback(this.admit(session)),
      onAuth: (auth, session, callback) => {
        this.authenticate(auth, session).then(
          () => callback(null, { user: auth.username ?? 'device' }),
          (error: Error) => callback(error),
        );
      },
      onMailFrom: (address, session, callback) => callback(this.checkSender(address, session)),
      onRcptTo: (address, session, callback) => callback(this.checkRecipient(address, session)),
      onData: (stream, session, callback) => {
        this.receive(stream, session).then(
          (id) => callback(null, `2.0.0 Ok: queued as ${id}`),
          (error: Error) => callback(error),
        );
      },
      onClose: (session) => this.release(session),
    });
    this.server.on('error', (error: Error & { remoteAddress?: string; code?: unknown }) => this.connectionError(error));
  }

  async listen(): Promise<AddressInfo> {
    this.server.listen(this.options.port, this.options.host);
    await once(this.server.server, 'listening');
    return this.server.server.address() as AddressInfo;
  }

  /**
   * Graceful shutdown: new connections get 421, transactions in progress may finish until
   * `timeoutMs`, then every connection is closed.
   */
  async close(timeoutMs: number): Promise<void> {
    this.closing = true;
    if (this.inFlight > 0) {
      const giveUp = new AbortController();
      await Promise.race([new Promise<void>((resolve) => (this.drained = resolve)), sleep(timeoutMs, undefined, { signal: giveUp.signal }).catch(() => undefined)]);
      giveUp.abort();
    }
    this.server.options.closeTimeout = 1;
    this.deadlines.clearAll();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  /** smtp-server's connection errors carry the peer's address; the rule name is found from it. */
  private connectionError(error: Error & { remoteAddress?: string; code?: unknown }): void {
    const ip = error.remoteAddress;
    const fields = { ip, client: ip ? this.access.match(ip)?.name : undefined, code: typeof error.code === 'string' ? error.code : undefined, err: error.message };
    if (isTlsError(error)) {
      // A device that cannot agree on a suite or protocol with listen.tls: the admin needs to know which.
      this.logger.warn(fields, 'TLS handshake failed');
      return;
    }
    this.logger.warn(fields, 'SMTP connection error');
  }

  /** Closes a connection whose deadline passed without a message or DATA arriving. */
  private noProgress(sessionId: string): void {
    if (this.committing.has(sessionId)) {
      this.deadlines.progress(sessionId);
      return;
    }
    for (const connection of this.server.connections) {
      if (connection.id === sessionId) {
        const info = this.sessions.get(sessionId);
        this.logger.warn({ ip: info?.ip, client: info?.rule.name, timeoutMs: this.options.idleTimeoutMs * 2 }, 'connection closed: no message and no data for twice the idle timeout');
        connection.send(421, '4.4.2 Too slow, no progress: closing connection');
        connection.close();
        return;
      }
    }
  }

  private admit(session: SMTPServerSession): SmtpReplyError | undefined {
    const refusal = this.admission(session);
    if (refusal) this.emit('refused', refusal.responseCode === 554 ? 'not_allowed' : this.closing ? 'shutting_down' : 'too_many_connections');
    return refusal;
  }

  private admission(session: SMTPServerSession): SmtpReplyError | undefined {
    const ip = session.remoteAddress;
    if (this.closing) {
      return new SmtpReplyError(421, '4.3.2 Service shutting down, try again later');
    }
    if (this.sessions.size >= this.options.maxConnections) {
      this.logger.warn({ ip, open: this.sessions.size }, 'connection refused: listen.maxConnections reached');
      return new SmtpReplyError(421, '4.7.0 Too many connections, try again later');
    }
    const rule = this.access.match(ip);
    if (!rule) {
      this.logger.warn({ ip }, 'connection refused: address is not in clients');
      return new SmtpReplyError(554, `5.7.1 ${ip} is not allowed to relay through this server`);
    }
    const open = this.perClient.get(ip) ?? 0;
    if (open >= this.options.maxConnectionsPerClient) {
      this.logger.warn({ ip, client: rule.name, open }, 'connection refused: too many from one address');
      return new SmtpReplyError(421, '4.7.0 Too many connections from your address, try again later');
    }
    this.perClient.set(ip, open + 1);
    this.sessions.set(session.id, { rule, ip });
    this.deadlines.progress(session.id);
    // Some printers give up when offered AUTH they cannot do: only advertise it to clients that use it.
    if (!rule.auth && !rule.acceptAnyAuth) {
      // A session's list replaces the server's, so it has to repeat STARTTLS when that is off.
      session.disabledCommands = this.options.tls ? ['AUTH'] : ['AUTH', 'STARTTLS'];
    }
    return undefined;
  }

  private release(session: SMTPServerSession): void {
    this.deadlines.clear(session.id);
    const info = this.sessions.get(session.id);
    if (!info) {
      return;
    }
    this.sessions.delete(session.id);
    const open = (this.perClient.get(info.ip) ?? 1) - 1;
    if (open <= 0) {
      this.perClient.delete(info.ip);
    } else {
      this.perClient.set(info.ip, open);
    }
  }

  private async authenticate(auth: SMTPServerAuthentication, session: SMTPServerSession): Promise<void> {
    const info = this.sessions.get(session.id);
    const rule = info?.rule;
    if (rule?.acceptAnyAuth) {
      return;
    }
    if (rule?.auth && sameText(auth.username ?? '', rule.auth.username) && sameText(auth.password ?? '', rule.auth.password)) {
      this.authThrottle.succeed(session.remoteAddress);
      return;
    }
    const delay = this.authThrottle.fail(session.remoteAddress);
    this.logger.warn({ ip: session.remoteAddress, client: rule?.name, delayMs: delay }, 'authentication failed');
    if (delay > 0) {
      // Unref'd: a guesser's queued answers must not keep a stopping agent alive.
      await sleep(delay, undefined, { ref: false });
    }
    this.emit('refused', 'auth_failed');
    throw new SmtpReplyError(535, '5.7.8 Authentication credentials invalid');
  }

  private checkSender(address: SMTPServerAddress, session: SMTPServerSession): SmtpReplyError | undefined {
    if (this.closing) {
      return new SmtpReplyError(421, '4.3.2 Service shutting down, try again later');
    }
    const rule = this.sessions.get(session.id)?.rule;
    if (!rule) {
      return new SmtpReplyError(554, '5.7.1 Not allowed to relay');
    }
    const unknownMail = unknownParameter(address, MAIL_PARAMETERS);
    if (unknownMail) {
      return parameterNotRecognized('MAIL FROM', unknownMail);
    }
    if (needsSmtpUtf8(address.address) && !hasSmtpUtf8(address)) {
      return SMTPUTF8_REQUIRED;
    }
    if (rule.auth && !session.user) {
      this.emit('refused', 'auth_required');
      return new SmtpReplyError(530, '5.7.0 Authentication required');
    }
    try {
      this.spool.checkCapacity();
    } catch (error) {
      this.emit('refused', 'spool_full');
      return error as SmtpReplyError;
    }
    const sender = rule.sendAs ?? address.address;
    if (this.allowedDomains && sender !== '') {
      const domain = sender.slice(sender.lastIndexOf('@') + 1).toLowerCase();
      if (!sender.includes('@') || !this.allowedDomains.has(domain)) {
        this.logger.warn({ ip: session.remoteAddress, client: rule.name, domain }, 'sender refused: domain not allowed');
        this.emit('refused', 'sender_domain');
        return new SmtpReplyError(550, `5.7.1 Sender domain ${domain || '(none)'} is not allowed to relay`);
      }
    }
    return undefined;
  }

  private checkRecipient(address: SMTPServerAddress, session: SMTPServerSession): SmtpReplyError | undefined {
    const unknownRcpt = unknownParameter(address, RCPT_PARAMETERS);
    if (unknownRcpt) {
      return parameterNotRecognized('RCPT TO', unknownRcpt);
    }
    if (needsSmtpUtf8(address.address) && !(session.envelope.mailFrom && hasSmtpUtf8(session.envelope.mailFrom))) {
      return SMTPUTF8_REQUIRED;
    }
    if (session.envelope.rcptTo.length >= this.options.maxRecipients) {
      return new SmtpReplyError(452, '4.5.3 Too many recipients');
    }
    return undefined;
  }

  private async receive(stream: SMTPServerDataStream, session: SMTPServerSession): Promise<string> {
    const info = this.sessions.get(session.id);
    this.inFlight += 1;
    const sizeLimit = new SizeLimit(this.options.maxMessageSize, ProgressDeadlines.PROGRESS_BYTES, () => this.deadlines.progress(session.id));
    const lineEnds = new LineEndingGuard(this.options.bareNewlines);
    const nulBytes = new NulByteGuard(this.options.nulBytes);
    const headerLines = new HeaderLineLimit();
    // A client that disconnects or idles out mid-message has its body stream destroyed by
    // smtp-server, silently unless someone listens for 'error'. The chain into the spool would
    // then wait for an end that never comes: temp file open, transaction in flight for ever.
    stream.on('error', (error) => headerLines.destroy(error));
    const mailFrom = session.envelope.mailFrom;
    const fields = {
      ip: session.remoteAddress,
      client: info?.rule.name,
      rcpts: session.envelope.rcptTo.length,
    };
    // From the end of DATA on, the client waits for the spool: not a stalled client.
    stream.once('end', () => this.committing.add(session.id));
    try {
      const envelope = await this.spool.accept(
        {
          client: { name: info?.rule.name ?? 'unknown', ip: session.remoteAddress },
          helo: session.hostNameAppearsAs ?? '',
          mailFrom: mailFrom ? mailFrom.address : '',
          rcptTo: session.envelope.rcptTo.map((r) => r.address),
          ...(info?.rule.sendAs ? { sendAs: info.rule.sendAs } : {}),
        },
        () => {
          // .pipe does not forward errors, and smtp-server's stream must be read to its end before
          // the reply can go out: a failing check ends the chain, not the source.
          for (const stage of [sizeLimit, lineEnds, nulBytes]) {
            stage.on('error', (error) => headerLines.destroy(error));
          }
          stream.pipe(sizeLimit).pipe(lineEnds).pipe(nulBytes).pipe(headerLines);
          if (!info?.rule.sendAs) {
            return headerLines;
          }
          // After the line-end guard: it looks at the CRLF bytes the spool keeps and delivery reads.
          const headerCheck = new SendAsHeaderCheck();
          headerLines.on('error', (error) => headerCheck.destroy(error));
          return headerLines.pipe(headerCheck);
        },
        new Date(),
        { headerMessageId: () => headerLines.messageId },
      );
      this.logger.info({ ...fields, messageId: envelope.id, size: envelope.size, reply: 250 }, 'message accepted');
      this.onAccepted(envelope);
      this.emit('accepted', envelope);
      return envelope.id;
    } catch (error) {
      const reply = error instanceof SmtpReplyError ? error : new SmtpReplyError(451, '4.3.0 Could not store the message, try again later', { cause: error });
      this.logger.warn({ ...fields, reply: reply.responseCode, reason: reply.message, err: String(reply.cause ?? '') }, 'message refused');
      this.emit('refused', reply.responseCode === 552 ? 'size' : reply.responseCode === 550 ? 'content' : reply.responseCode === 451 ? 'storage' : 'other');
      await drain(stream);
      throw reply;
    } finally {
      this.committing.delete(session.id);
      if (this.sessions.has(session.id)) {
        this.deadlines.progress(session.id);
      }
      this.inFlight -= 1;
      if (this.inFlight === 0) {
        this.drained?.();
      }
    }
  }
}

/**
 * RFC 6531: a non-ASCII address is only valid in a transaction that declared SMTPUTF8. Without it
 * a latin1 byte would be decoded into U+FFFD and relayed as a different address, or a UTF-8
 * recipient would fail only later at Exchange Online.
 */
const SMTPUTF8_REQUIRED = new SmtpReplyError(553, '5.6.7 Non-ASCII address without SMTPUTF8');

/**
 * The parameters of the extensions EHLO advertises (RFC 5321 §4.1.1.11: any other is answered
 * 555): SIZE, BODY (8BITMIME), SMTPUTF8, AUTH (RFC 4954), REQUIRETLS (over TLS), and DSN's RET,
 * ENVID, NOTIFY and ORCPT. smtp-server checks the values of those it knows and accepts any other
 * name silently, so a client's XYZ=1 would otherwise be taken and dropped.
 */
const MAIL_PARAMETERS = new Set(['SIZE', 'BODY', 'SMTPUTF8', 'AUTH', 'REQUIRETLS', 'RET', 'ENVID']);
const RCPT_PARAMETERS = new Set(['NOTIFY', 'ORCPT']);

function unknownParameter(address: SMTPServerAddress, known: ReadonlySet<string>): string | undefined {
  const args = address.args;
  if (!args) return undefined;
  return Object.keys(args).find((name) => !known.has(name.toUpperCase()));
}

function parameterNotRecognized(command: string, name: string): SmtpReplyError {
  // The name is printable: smtp-server splits parameters on white space and refuses control characters only in values.
  return new SmtpReplyError(555, `5.5.4 ${command} parameter ${name.replace(/[^\x21-\x7e]/g, '?').slice(0, 64)} not recognized`);
}

function needsSmtpUtf8(address: string): boolean {
  return /[^\x00-\x7f]/.test(address);
}

function hasSmtpUtf8(address: SMTPServerAddress): boolean {
  return Boolean(address.args && (address.args as Record<string, unknown>).SMTPUTF8);
}

/** Reads the rest of a refused message so the reply comes after the client's end of data. */
async function drain(stream: SMTPServerDataStream): Promise<void> {
  if (stream.readableEnded || stream.destroyed) {
    return;
  }
  stream.unpipe();
  stream.resume();
  await once(stream, 'end').catch(() => undefined);
}

function sameText(given: string, expected: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}
