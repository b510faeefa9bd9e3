import { Readable } from 'node:stream';
import type { AccessTokenProvider } from '../token/tokenProvider.ts';
import { SubmitError, type Submitter, type SubmitResult, type SubmitMessage, type UpstreamFailureReport } from '../smtp/submission.ts';
import { GRAPH_MAX_MIME_BYTES, GraphMailboxBusyError, retryAfterMs, type GraphMailboxLimiter } from './graphLimits.ts';
import { graphReplies } from './graphReplyRules.ts';
import { graphError, internetMessageIdOf, lookUpSentItem, sentItemsForbidden } from './sentItemsLookup.ts';

export { GRAPH_MAX_MIME_BYTES };

/** The application permission sendMail needs; RBAC for Applications grants it without putting it in the token. */
export const MAIL_SEND_ROLE = 'Mail.Send';

export interface GraphSubmitterOptions {
  /** e.g. https://graph.microsoft.com (a preset's graphBaseUrl); overridable for tests and sovereign clouds. */
  baseUrl: string;
  mailbox: string;
  tokens: AccessTokenProvider;
  saveToSentItems: boolean;
  timeoutMs: number;
  /** The app registration's client id, named in the fixes. */
  appId: string;
  /** This app's limits on this mailbox (graphMailboxLimiter), shared with every submitter for them. */
  limiter: GraphMailboxLimiter;
  /** The SMTP route of the same mailbox, for messages too large for one request (`graph.largeMessages: smtp`). */
  largeMessages?: Submitter;
}

/**
 * The request left and no usable answer came back (timeout, dropped connection, 5xx other than
 * 503): Graph has no idempotency key, so the message may have been sent.
 */
export class AmbiguousSubmissionError extends SubmitError {
  constructor(what: string, options?: { cause?: unknown }) {
    super(graphReplies.maybeSent(what), [], options);
    this.name = 'AmbiguousSubmissionError';
  }
}

/**
 * Microsoft Graph `POST /users/{mailbox}/sendMail` with the MIME base64-encoded: the bytes arrive
 * already rewritten (send-as, Received:) by deliverMessage, exactly as on the SMTP route. Each
 * request waits on the mailbox's limiter (Graph's budgets, the relay's per-minute rate where the
 * caller does not schedule, a Retry-After pause). Failures carry an SMTP-like reply so the shared
 * classifyReply maps them to a kind and a fix (graphReplyRules.ts).
 */
export class GraphSubmitter implements Submitter {
  private lookupForbiddenWarned = false;

  constructor(private readonly options: GraphSubmitterOptions) {}

  /** The limiter this submitter waits on (its settings show how a runtime shares the mailbox). */
  get limiter(): GraphMailboxLimiter {
    return this.options.limiter;
  }

  async submit(message: SubmitMessage): Promise<SubmitResult> {
    const mime = await readAll(message.raw);
    if (mime.length > GRAPH_MAX_MIME_BYTES) {
      if (this.options.largeMessages) {
        const result = await this.options.largeMessages.submit({ ...message, raw: Readable.from([mime]) });
        return { ...result, response: `over SMTP (${mime.length} bytes of MIME, more than one Graph request takes): ${result.response ?? ''}`.trim() };
      }
      throw new SubmitError(graphReplies.tooLarge(`the message of ${mime.length} bytes is over the ${GRAPH_MAX_MIME_BYTES} bytes of MIME one sendMail request takes`));
    }
    const token = await this.options.tokens.getToken();
    let warning: string | undefined;
    if (this.options.saveToSentItems && (message.earlierAttempts ?? 0) > 0) {
      const earlier = await this.findEarlierCopy(mime, token);
      if (earlier.sent) {
        return { accepted: [...message.to], rejected: [], response: `already in Sent Items of ${this.options.mailbox} (${earlier.id}): an earlier attempt sent it; not sent again` };
      }
      warning = earlier.warning;
    }
    const body = mime.toString('base64');
    const response = await this.request(body.length, () =>
      fetch(`${this.userUrl()}/sendMail${this.options.saveToSentItems ? '' : '?saveToSentItems=false'}`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'text/plain' },
        body,
        signal: AbortSignal.timeout(this.options.timeoutMs),
      }),
    );
    if (response.status === 202) {
      await response.body?.cancel();
      return { accepted: [...message.to], rejected: [], response: '202 Accepted (Graph sendMail)', ...(warning ? { warning } : {}) };
    }
    const text = await response.text().catch(() => '');
    throw this.failureOf(response, text, token, message.from);
  }

  async close(): Promise<void> {
    await this.options.largeMessages?.close();
  }

  private userUrl(): string {
    return `${this.options.baseUrl.replace(/\/+$/, '')}/v1.0/users/${encodeURIComponent(this.options.mailbox)}`;
  }

  /** One request under the mailbox's limiter; a transport failure after it may have left is ambiguous. */
  private async request(bodyBytes: number, send: () => Promise<Response>): Promise<Response> {
    let release: () => void;
    try {
      release = await this.options.limiter.acquire({ bodyBytes, message: true });
    } catch (error) {
      if (error instanceof GraphMailboxBusyError) throw new SubmitError(graphReplies.busy(error.message));
      throw error;
    }
    try {
      const response = await send();
      if (response.status === 429 || response.status === 503) {
        this.options.limiter.pause(Date.now() + retryAfterMs(response.headers.get('retry-after')));
      }
      return response;
    } catch (error) {
      throw transportFailure(error);
    } finally {
      release();
    }
  }

  private failureOf(response: Response, text: string, token: string, sender: string): SubmitError {
    const { status } = response;
    const answer = { status, ...graphError(text) };
    const { mailbox, appId } = this.options;
    if (status === 429 || status === 503) {
      return new SubmitError(graphReplies.throttled(answer, mailbox, this.options.limiter.pauseUntil - Date.now()));
    }
    // 503 is "not processed, try later"; any other 5xx may come after Exchange took the message.
    if (status >= 500) return new AmbiguousSubmissionError(`Graph answered HTTP ${status} ${answer.code ?? ''} after taking the request`.replace(/ +/g, ' '));
    if (answer.code === 'ErrorSendAsDenied') return new SubmitError(graphReplies.sendAsDenied(answer, mailbox, sender));
    if (status === 413 || answer.code === 'ErrorMessageSizeExceeded') return new SubmitError(graphReplies.tooLarge(graphReplyText(answer)));
    if (status === 404 || answer.code === 'ErrorInvalidUser' || answer.code === 'MailboxNotEnabledForRESTAPI') {
      return new SubmitError(graphReplies.mailboxNotFound(answer, mailbox));
    }
    if (status === 401) return new SubmitError(graphReplies.tokenRefused(answer));
    if (status === 403) {
      return new SubmitError(tokenRoles(token).includes(MAIL_SEND_ROLE) ? graphReplies.accessPolicy(answer, appId, mailbox) : graphReplies.noMailSend(answer, appId, mailbox));
    }
    return new SubmitError(graphReplies.refused(answer));
  }

  /**
   * Whether an earlier attempt's copy is in Sent Items. Forbidden (no Mail.Read*): resend, with a
   * warning once per submitter. Graph unable to answer: defer, since a resend could duplicate.
   */
  private async findEarlierCopy(mime: Buffer, token: string): Promise<{ sent: true; id: string } | { sent: false; warning?: string }> {
    const id = internetMessageIdOf(mime);
    if (!id) return { sent: false };
    let answer: Awaited<ReturnType<typeof lookUpSentItem>>;
    let release: () => void;
    try {
      release = await this.options.limiter.acquire({ bodyBytes: 0, message: false });
    } catch (error) {
      if (error instanceof GraphMailboxBusyError) throw new SubmitError(graphReplies.busy(error.message));
      throw error;
    }
    try {
      answer = await lookUpSentItem({ baseUrl: this.options.baseUrl, mailbox: this.options.mailbox, token, internetMessageId: id, timeoutMs: this.options.timeoutMs });
    } finally {
      release();
    }
    if (answer.found === true) return { sent: true, id };
    if (answer.found === false) return { sent: false };
    if (answer.found === 'forbidden') {
      if (this.lookupForbiddenWarned) return { sent: false };
      this.lookupForbiddenWarned = true;
      const forbidden = sentItemsForbidden(this.options.mailbox, this.options.appId, answer.status, answer.code);
      return { sent: false, warning: `${forbidden.problem}: ${forbidden.fix}` };
    }
    throw new SubmitError(graphReplies.lookupFailed(`Sent Items of ${this.options.mailbox} could not be searched (${answer.detail})`));
  }
}

function graphReplyText(answer: { status: number; code: string | undefined; message: string | undefined }): string {
  return `HTTP ${answer.status} ${answer.code ?? ''}${answer.message ? `: ${answer.message.slice(0, 160)}` : ''}`;
}

/** Reasons the request never left: nothing can have been sent. */
const NOT_SENT_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'UND_ERR_CONNECT_TIMEOUT']);
const TLS_CODE = /^(CERT_|ERR_TLS_|ERR_SSL_|UNABLE_TO_|DEPTH_ZERO_SELF_SIGNED_CERT|SELF_SIGNED_CERT)/;

function transportFailure(error: unknown): SubmitError {
  const cause = (error as { cause?: { code?: unknown; message?: unknown } }).cause;
  const code = typeof cause?.code === 'string' ? cause.code : undefined;
  if (code && NOT_SENT_CODES.has(code)) {
    const report: UpstreamFailureReport = { code: 'ECONNECTION', originalCode: code, command: 'GRAPH sendMail', message: `Graph could not be reached (${code})` };
    return new SubmitError(report, [], { cause: error });
  }
  if (code && TLS_CODE.test(code)) {
    return new SubmitError({ code: 'ETLS', originalCode: code, command: 'GRAPH sendMail', message: `the TLS connection to Graph failed (${code})` }, [], { cause: error });
  }
  const what = (error as Error).name === 'TimeoutError' ? 'Graph did not answer within the timeout' : `the connection to Graph broke (${code ?? (error as Error).name})`;
  return new AmbiguousSubmissionError(what, { cause: error });
}

/** The roles of an app-only token, read without verifying it (Graph verifies; this only chooses the fix). */
function tokenRoles(token: string): string[] {
  try {
    const payload = JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8')) as { roles?: unknown };
    return Array.isArray(payload.roles) ? payload.roles.filter((r): r is string => typeof r === 'string') : [];
  } catch {
    return [];
  }
}

async function readAll(raw: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of raw) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as string));
  return Buffer.concat(chunks);
}
