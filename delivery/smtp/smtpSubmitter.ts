import { createTransport, type Transporter } from 'nodemailer';
import type { SMTPPoolOptions, SMTPPoolSentMessageInfo } from 'nodemailer/lib/smtp-pool';
import type { SMTPConnectionCustomAuthContext } from 'nodemailer/lib/smtp-connection';
import type { Readable } from 'node:stream';
import { SendRate } from '../sendRate.ts';
import type { AccessTokenProvider } from '../token/tokenProvider.ts';
import { SubmitError, type RecipientRejection, type SubmitResult, type Submitter, type UpstreamFailureReport } from './submission.ts';

export interface SmtpSubmitterOptions {
  host: string;
  port: number;
  security: 'starttls' | 'tls' | 'none';
  /** Extra trusted CA, PEM text. */
  ca?: string;
  /** Name sent in EHLO. */
  name?: string;
  auth: { type: 'oauth2'; user: string; tokens: AccessTokenProvider } | { type: 'basic'; user: string; password: string } | { type: 'none' };
  connections: number;
  /** Submissions started per minute at most; absent when the caller schedules them (the spool delivery loop). */
  perMinute?: number;
  connectTimeoutMs?: number;
  socketTimeoutMs?: number;
}

/** nodemailer's SMTP client error fields that classifyReply reads. */
interface NodemailerError extends Error {
  code?: string;
  response?: string;
  responseCode?: number;
  command?: string;
  recipient?: string;
  originalCode?: string;
  rejectedErrors?: NodemailerError[];
}

/**
 * Submits over SMTP with a pool of reused connections, capped at the upstream's connection and
 * per-minute limits (Exchange Online: 3 and 30 per mailbox), sending the spooled bytes as they are.
 */
export class SmtpSubmitter implements Submitter {
  private readonly transport: Transporter<SMTPPoolSentMessageInfo, SMTPPoolOptions>;
  private readonly tokens: AccessTokenProvider | undefined;
  private readonly rate: SendRate | undefined;

  constructor(options: SmtpSubmitterOptions) {
    this.tokens = options.auth.type === 'oauth2' ? options.auth.tokens : undefined;
    this.rate = options.perMinute === undefined ? undefined : new SendRate(options.perMinute);
    const poolOptions: SMTPPoolOptions & { pool: true } = {
      pool: true,
      host: options.host,
      port: options.port,
      secure: options.security === 'tls',
      // starttls never falls back to plain text: a missing STARTTLS fails the attempt.
      requireTLS: options.security === 'starttls',
      ignoreTLS: options.security === 'none',
      name: options.name,
      tls: { minVersion: 'TLSv1.2', servername: options.host, ...(options.ca ? { ca: options.ca } : {}) },
      maxConnections: options.connections,
      maxMessages: 100,
      connectionTimeout: options.connectTimeoutMs ?? 30_000,
      greetingTimeout: options.connectTimeoutMs ?? 30_000,
      socketTimeout: options.socketTimeoutMs ?? 120_000,
      logger: false,
      debug: false,
    };
    const auth = options.auth;
    if (auth.type === 'oauth2') {
      // type OAuth2 keeps nodemailer on XOAUTH2 (a custom type would let it pick LOGIN when the
      // server lists that first); the custom handler below then does the exchange with a token
      // from our provider, and this placeholder token is never sent.
      poolOptions.auth = { type: 'OAuth2', user: auth.user, accessToken: 'from-token-provider' };
      poolOptions.customAuth = { XOAUTH2: (ctx) => xoauth2(ctx, auth.user, auth.tokens) };
    } else if (auth.type === 'basic') {
      poolOptions.auth = { user: auth.user, pass: auth.password };
      poolOptions.authMethod = 'LOGIN';
    }
    this.transport = createTransport(poolOptions);
  }

  async submit(message: { id: string; from: string; to: string[]; raw: Readable }): Promise<SubmitResult> {
    // A token problem surfaces here, typed, before a connection is opened; inside the SASL
    // exchange nodemailer would report it as a bare EAUTH. The token is cached either way.
    await this.tokens?.getToken();
    const slot = await this.rate?.waitForSlot();
    let info: SMTPPoolSentMessageInfo;
    try {
      info = await this.transport.sendMail({ envelope: { from: message.from, to: message.to }, raw: message.raw });
    } catch (error) {
      const err = error as NodemailerError;
      throw new SubmitError(toFailure(err), rejectionsOf(err.rejectedErrors), { cause: error });
    } finally {
      // Exchange counts the message when it answers, so the slot's minute runs from then.
      if (slot !== undefined) this.rate?.settle(slot);
    }
    const details = info as SMTPPoolSentMessageInfo & { rejectedErrors?: NodemailerError[] };
    return {
      accepted: (info.accepted ?? []).map(String),
      rejected: rejectionsOf(details.rejectedErrors),
      response: info.response,
    };
  }

  async close(): Promise<void> {
    this.transport.close();
  }
}

/**
 * SASL XOAUTH2 with the initial response on its own line after the 334: the token makes the
 * response about 1.5 KB, which some servers refuse on the AUTH command line itself.
 */
async function xoauth2(ctx: SMTPConnectionCustomAuthContext, user: string, tokens: AccessTokenProvider): Promise<void> {
  const token = await tokens.getToken();
  const start = await ctx.sendCommand('AUTH XOAUTH2');
  if (start.status !== 334) {
    throw authError(start.response);
  }
  const answer = await ctx.sendCommand(Buffer.from(`user=${user}\x01auth=Bearer ${token}\x01\x01`, 'utf8').toString('base64'));
  if (answer.status === 334) {
    // RFC 7628: the server sent an error challenge; an empty line gets the final reply.
    const final = await ctx.sendCommand('');
    throw authError(final.response);
  }
  if (answer.status !== 235) {
    throw authError(answer.response);
  }
}

function authError(response: string): NodemailerError {
  const error: NodemailerError = new Error(`authentication failed: ${response}`);
  error.response = response;
  error.responseCode = Number(response.slice(0, 3)) || undefined;
  return error;
}

function toFailure(err: NodemailerError): UpstreamFailureReport {
  const responseCode = err.responseCode ?? (err.response ? Number(err.response.slice(0, 3)) || undefined : undefined);
  const report: UpstreamFailureReport = { code: err.code, response: err.response, responseCode, command: err.command, message: err.message };
  // Without it a TLS alert reads as a plain socket error, and a protocol mismatch is retried for ever.
  if (err.originalCode) report.originalCode = err.originalCode;
  return report;
}

function rejectionsOf(errors: NodemailerError[] | undefined): RecipientRejection[] {
  return (errors ?? []).map((err) => ({ rcpt: err.recipient ?? '', failure: toFailure(err) }));
}
