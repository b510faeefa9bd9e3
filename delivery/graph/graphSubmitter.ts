import type { Readable } from 'node:stream';
import type { AccessTokenProvider } from '../token/tokenProvider.ts';
import { SubmitError, type Submitter, type SubmitResult } from '../smtp/submission.ts';

/** Graph takes about 4 MB per request, measured on the base64 body: about 3 MB of MIME. */
export const GRAPH_MAX_MIME_BYTES = 3 * 1024 * 1024;

export interface GraphSubmitterOptions {
  /** e.g. https://graph.microsoft.com (a preset's graphBaseUrl); overridable for tests and sovereign clouds. */
  baseUrl: string;
  mailbox: string;
  tokens: AccessTokenProvider;
  saveToSentItems: boolean;
  timeoutMs: number;
  appId?: string;
}

/**
 * Microsoft Graph `POST /users/{mailbox}/sendMail` with the MIME base64-encoded: the bytes arrive
 * already rewritten (send-as, Received:) by deliverMessage, exactly as on the SMTP route. Failures
 * carry an SMTP-like reply so the shared classifyReply rules map them to a kind and a fix.
 */
export class GraphSubmitter implements Submitter {
  constructor(private readonly options: GraphSubmitterOptions) {}

  async submit(message: { id: string; from: string; to: string[]; raw: Readable }): Promise<SubmitResult> {
    const mime = await readAll(message.raw);
    if (mime.length > GRAPH_MAX_MIME_BYTES) {
      throw failure(552, '5.3.4', `message of ${mime.length} bytes exceeds Graph sendMail's ${GRAPH_MAX_MIME_BYTES} bytes of MIME per request`);
    }
    const token = await this.options.tokens.getToken();
    const url = `${this.options.baseUrl.replace(/\/+$/, '')}/v1.0/users/${encodeURIComponent(this.options.mailbox)}/sendMail` +
      (this.options.saveToSentItems ? '' : '?saveToSentItems=false');
    let response: Response;
    try {
      response = await fetch(url, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'text/plain' },
        body: mime.toString('base64'),
        signal: AbortSignal.timeout(this.options.timeoutMs),
      });
    } catch (error) {
      // The request may have reached Graph: a retry may duplicate the message.
      throw new SubmitError({ code: 'EGRAPH_MAYBE_SENT', message: 'Graph did not answer; the message may have been sent' }, [], { cause: error });
    }
    if (response.status === 202) {
      return { accepted: [...message.to], rejected: [], response: '202 Accepted (Graph sendMail)' };
    }
    const body = await response.text();
    throw this.mapError(response.status, body, response.headers.get('retry-after'));
  }

  private mapError(status: number, body: string, retryAfter: string | null): SubmitError {
    const code = graphErrorCode(body);
    const mailbox = this.options.mailbox;
    if (status === 429 || status === 503) {
      return failure(451, '4.7.500', `Graph throttled ${mailbox} (HTTP ${status}${retryAfter ? `, Retry-After ${retryAfter}s` : ''})`, { retryAfterSeconds: Number(retryAfter ?? 'NaN') });
    }
    if (status >= 500) return new SubmitError({ code: 'EGRAPH_MAYBE_SENT', responseCode: undefined, message: `Graph answered HTTP ${status} after taking the request; the message may have been sent` });
    if (code === 'ErrorSendAsDenied') return failure(550, '5.7.60', `SendAsDenied; ${mailbox} not allowed to send as this sender (Graph ErrorSendAsDenied)`);
    if (status === 413 || code === 'ErrorMessageSizeExceeded') return failure(552, '5.3.4', 'message too large for Graph sendMail');
    if (status === 404 || code === 'ErrorInvalidUser' || code === 'MailboxNotEnabledForRESTAPI') return failure(550, '5.1.10', `Graph: mailbox ${mailbox} not found (${code ?? status})`);
    if (status === 401 || status === 403) {
      const app = this.options.appId ?? '<appId>';
      const hint = code === 'ErrorAccessDenied'
        ? `RBAC for Applications does not cover ${mailbox}: New-ManagementRoleAssignment -App ${app} -Role "Application Mail.Send" -CustomResourceScope <scope covering ${mailbox}>`
        : 'grant the Mail.Send application permission on Microsoft Graph and admin consent';
      return failure(535, '5.7.139', `Graph refused the token (HTTP ${status} ${code ?? ''}): ${hint}`);
    }
    return failure(554, '5.0.0', `Graph answered HTTP ${status} ${code ?? ''}`);
  }

  async close(): Promise<void> {}
}

function failure(reply: number, enhanced: string, text: string, _extra?: { retryAfterSeconds: number }): SubmitError {
  return new SubmitError({ responseCode: reply, response: `${reply} ${enhanced} ${text}`, command: 'GRAPH sendMail', message: text });
}

function graphErrorCode(body: string): string | undefined {
  try {
    const parsed: unknown = JSON.parse(body);
    const error = typeof parsed === 'object' && parsed !== null ? (parsed as { error?: { code?: unknown } }).error : undefined;
    return typeof error?.code === 'string' ? error.code : undefined;
  } catch {
    return undefined;
  }
}

async function readAll(raw: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of raw) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as string));
  return Buffer.concat(chunks);
}
