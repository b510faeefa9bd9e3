import type { Readable } from 'node:stream';
import type { MessageEnvelope } from '../contract/messageEnvelope.ts';
import { classifyReply, type Classification } from './classifyReply.ts';
import { TokenUnavailableError } from './errors.ts';
import { UpstreamSecretError } from './errors.ts';
import type { DeliveryLogger } from './logger.ts';
import { HeaderTooLargeError } from './headerSection.ts';
import type { MissingFields } from './sendAsRewrite.ts';
import { rewriteMessageStream } from './sendAsStream.ts';
import { SubmitError, type Submitter, type UpstreamFailureReport } from './smtp/submission.ts';
import { rfc5322Date, traceHeader, withTraceHeader } from './traceHeader.ts';

export interface RecipientOutcome {
  rcpt: string;
  reply: string;
  classification: Classification;
}

/** What one attempt achieved, recipient by recipient. */
export interface AttemptOutcome {
  /** The upstream took the message for these: never send it to them again. */
  accepted: string[];
  /** Refused for good. */
  rejected: RecipientOutcome[];
  /** Not delivered this time but worth retrying (transient or needs-operator). */
  deferred: RecipientOutcome[];
  /** Why nothing was accepted, when that is the case. */
  failure?: RecipientOutcome;
}

export interface DeliveryRequest {
  envelope: MessageEnvelope;
  /** The recipients still owed the message (all of the envelope's on the first attempt). */
  rcptTo: string[];
  /** The spooled bytes, CRLF line ends, not dot-stuffed. */
  openBody: () => Readable;
  /** The mailbox the upstream authenticates as, for operator hints. */
  mailbox?: string;
  /** Attempts already made (the spool's state, the ledger's claim): a route without an idempotency key looks before resending. */
  earlierAttempts?: number;
}

/**
 * One delivery attempt, the same for every path (embedded worker, SQS worker, Lambda): apply the
 * client's send-as, put the relay's Received: field on top, submit, and sort every recipient into accepted / rejected / deferred.
 */
export async function deliverMessage(request: DeliveryRequest, submitter: Submitter, logger: DeliveryLogger): Promise<AttemptOutcome> {
  const { envelope } = request;
  const from = envelope.sendAs ?? envelope.mailFrom;
  const context = { sender: from, mailbox: request.mailbox };
  const started = Date.now();
  const body = request.openBody();
  const rewrite = { ...(envelope.sendAs ? { sendAs: envelope.sendAs } : {}), add: missingFields(envelope) };
  const raw = withTraceHeader(rewriteMessageStream(body, rewrite), traceHeader(envelope));
  // A failing source (unreadable file, broken S3 stream) surfaces through the submission.
  body.on('error', () => undefined);
  // A submitter may return before it read everything (recipients refused before DATA, a reply
  // mid-DATA, a fake that only resumes the stream). The caller then closes the file under a
  // half-read stream, which ends it with ERR_STREAM_PREMATURE_CLOSE: with no listener left, that
  // error would be uncaught and take the agent down.
  raw.on('error', () => undefined);
  try {
    const result = await submitter.submit({ id: envelope.id, from, to: request.rcptTo, raw, earlierAttempts: request.earlierAttempts ?? 0 });
    if (result.warning) logger.warn({ messageId: envelope.id, warning: result.warning }, 'delivery warning');
    const refusals = result.rejected.map((r) => recipientOutcome(r.rcpt, r.failure, context));
    const outcome: AttemptOutcome = {
      accepted: result.accepted,
      rejected: refusals.filter((r) => r.classification.kind === 'permanent'),
      deferred: refusals.filter((r) => r.classification.kind !== 'permanent'),
    };
    logger.info(
      { messageId: envelope.id, accepted: outcome.accepted.length, rejected: outcome.rejected.length, deferred: outcome.deferred.length, ms: Date.now() - started, response: result.response },
      'delivery attempt accepted',
    );
    return outcome;
  } catch (error) {
    body.destroy();
    const failure =
      error instanceof HeaderTooLargeError
        ? {
            rcpt: '',
            reply: error.message,
            classification: {
              kind: 'permanent' as const,
              throttled: false,
              reason: `${error.message}: the From field cannot be rewritten for send-as (${envelope.sendAs}); a retry would read the same bytes`,
            },
          }
        : error instanceof UpstreamSecretError
        ? {
            rcpt: '',
            reply: error.message,
            classification: {
              kind: 'config' as const,
              throttled: false,
              reason: error.message,
              operatorAction: `put a valid upstream JSON (the fields of the agent's upstream block) in secret ${error.secretArn}`,
            },
          }
        : recipientOutcome('', failureOf(error), context);
    const refusals = error instanceof SubmitError ? error.rejected.map((r) => recipientOutcome(r.rcpt, r.failure, context)) : [];
    const byRcpt = new Map(refusals.map((r) => [r.rcpt, r]));
    const outcome: AttemptOutcome = { accepted: [], rejected: [], deferred: [], failure };
    for (const rcpt of request.rcptTo) {
      // Each recipient keeps its own refusal when it had one; the rest share the overall failure.
      const own = byRcpt.get(rcpt) ?? { ...failure, rcpt };
      (own.classification.kind === 'permanent' ? outcome.rejected : outcome.deferred).push(own);
    }
    // Logged once settled (delivery/history/logAttempt.ts), with the decision.
    return outcome;
  } finally {
    // Stops reading the source before the caller closes it (see the error listener above).
    raw.destroy();
  }
}

/**
 * What the relay adds where the device left it out (delivery/sendAsRewrite.ts): the same on every
 * attempt, so a retried message keeps its Message-ID and Date.
 */
function missingFields(envelope: MessageEnvelope): MissingFields {
  const sender = envelope.sendAs ?? envelope.mailFrom;
  const domain = sender.includes('@') ? sender.slice(sender.lastIndexOf('@') + 1) : '';
  return {
    sender: envelope.mailFrom,
    date: rfc5322Date(new Date(envelope.receivedAt)),
    messageId: `${envelope.id}@${/^[A-Za-z0-9.-]+$/.test(domain) ? domain : MESSAGE_ID_FALLBACK_DOMAIN}`,
  };
}

/** The Message-ID's right side when the sender has no usable domain (the null sender). */
const MESSAGE_ID_FALLBACK_DOMAIN = 'smarthost.invalid';

function recipientOutcome(rcpt: string, failure: UpstreamFailureReport, context: { sender: string; mailbox?: string }): RecipientOutcome {
  return { rcpt, reply: failure.response ?? failure.message, classification: classifyReply(failure, context) };
}

function failureOf(error: unknown): UpstreamFailureReport {
  if (error instanceof SubmitError) {
    return error.failure;
  }
  if (error instanceof TokenUnavailableError) {
    // Refused by the authority is for the operator; unreachable is a network problem like any other.
    return error.configProblem ? { code: 'EAUTH', message: error.message, command: 'TOKEN' } : { code: 'ECONNECTION', message: error.message, command: 'TOKEN' };
  }
  const err = error as { code?: unknown; message?: unknown };
  return { code: typeof err.code === 'string' ? err.code : undefined, message: String(err.message ?? error) };
}
