/**
 * Replies of smtp.office365.com client submission, as collected in
 * /work/shared/docs/exchange-online.md. The text of each starts with its enhanced status code;
 * the connection patch sends such texts without adding another one.
 */
export interface SmtpReply {
  code: number;
  /** Everything after the code and the space, enhanced status code included. */
  text: string;
}

export const REPLIES = {
  starttlsFirst: { code: 530, text: '5.7.0 Must issue a STARTTLS command first' },
  notAuthenticated: { code: 530, text: '5.7.57 Client not authenticated to send mail' },
  authOk: { code: 235, text: '2.7.0 Authentication successful' },
  authFailed: { code: 535, text: '5.7.3 Authentication unsuccessful' },
  basicDisabled: { code: 535, text: '5.7.139 Authentication unsuccessful, basic authentication is disabled.' },
  unknownMechanism: { code: 504, text: '5.7.4 Unrecognized authentication type' },
  sendAsDenied: { code: 550, text: '5.7.60 SMTP; Client does not have permissions to send as this sender' },
  recipientNotFound: { code: 550, text: '5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup' },
  tooBig: { code: 552, text: '5.3.4 Message size exceeds fixed maximum message size' },
  concurrency: { code: 432, text: '4.3.2 Concurrent connections limit exceeded.' },
  rate: { code: 432, text: '4.3.2 STOREDRV.ClientSubmit; sender thread limit exceeded.' },
  senderOk: { code: 250, text: '2.1.0 Sender OK' },
  recipientOk: { code: 250, text: '2.1.5 Recipient OK' },
  bye: { code: 221, text: '2.0.0 Service closing transmission channel' },
} as const satisfies Record<string, SmtpReply>;

export const ENHANCED_CODE = /^[245]\.\d{1,3}\.\d{1,3}(?: |$)/;

/** Parses `'451 4.7.500 Server busy'`; throws on anything that is not one reply line. */
export function parseReply(line: string): SmtpReply {
  const m = /^([2-5]\d\d)(?: (.*))?$/.exec(line.trim());
  if (!m || /[\r\n]/.test(line.trim())) {
    throw new Error(`not an SMTP reply line: ${JSON.stringify(line)}`);
  }
  return { code: Number(m[1]), text: m[2] ?? '' };
}

export function formatReply(reply: SmtpReply): string {
  return reply.text ? `${reply.code} ${reply.text}` : String(reply.code);
}

/** An error whose `responseCode` and message smtp-server turns into exactly this reply. */
export class SmtpReplyError extends Error {
  readonly responseCode: number;

  constructor(reply: SmtpReply) {
    super(reply.text);
    this.name = 'SmtpReplyError';
    this.responseCode = reply.code;
  }
}

export function replyError(reply: SmtpReply): SmtpReplyError {
  return new SmtpReplyError(reply);
}
