import type { SMTPConnection } from 'smtp-server/lib/smtp-connection.js';
import { ENHANCED_CODE, REPLIES, formatReply, type SmtpReply } from './replies.ts';

/**
 * Makes one smtp-server connection speak like smtp.office365.com where the library's own
 * wording or codes differ, by wrapping its `send`:
 * - AUTH before STARTTLS: the library's 538 becomes `530 5.7.0 Must issue a STARTTLS command first`;
 * - EHLO before STARTTLS does not offer AUTH (EXO offers it only inside TLS);
 * - texts that already start with an enhanced status code (all of REPLIES, scripted faults)
 *   are sent as they are instead of getting a second code from the library;
 * - EXO's wording for the greeting, MAIL/RCPT/STARTTLS/DATA/QUIT replies and the size refusal.
 */
export interface DialectHooks {
  /** Called with every reply line of code >= 400 that goes out. */
  onErrorReply(reply: string): void;
}

type SendArgs = Parameters<SMTPConnection['send']>;

function exoGreeting(name: string): string {
  const date = new Date().toUTCString().replace('GMT', '+0000');
  return `${name} Microsoft ESMTP MAIL Service ready at ${date}`;
}

function rewrite(conn: SMTPConnection, [code, data, context]: SendArgs): SendArgs {
  const as = (reply: SmtpReply): SendArgs => [reply.code, reply.text, false];
  if (code === 538) return as(REPLIES.starttlsFirst);
  if (code === 552 && typeof data === 'string' && data.startsWith('Error: message exceeds')) return as(REPLIES.tooBig);
  if (code === 504 && data === 'Error: Unrecognized authentication type') return as(REPLIES.unknownMechanism);
  if (code === 250 && context === 'MAIL_FROM_OK') return as(REPLIES.senderOk);
  if (code === 250 && context === 'RCPT_TO_OK') return as(REPLIES.recipientOk);
  if (code === 221 && data === 'Bye') return as(REPLIES.bye);
  if (code === 220 && data === 'Ready to start TLS') return [220, '2.0.0 SMTP server ready', false];
  if (code === 354) return [354, 'Start mail input; end with <CRLF>.<CRLF>', false];
  if (code === 220 && context === false && typeof data === 'string' && data.startsWith(`${conn.name} ESMTP`)) {
    return [220, exoGreeting(conn.name), false];
  }
  if (code === 250 && Array.isArray(data) && !conn.secure) {
    return [code, data.filter((line) => !/^AUTH\b/i.test(line)), context];
  }
  if (typeof data === 'string' && ENHANCED_CODE.test(data)) return [code, data, false];
  return [code, data, context];
}

export function applyExoDialect(conn: SMTPConnection, hooks: DialectHooks): void {
  const send = conn.send.bind(conn);
  conn.send = (...args: SendArgs): void => {
    const out = rewrite(conn, args);
    if (out[0] >= 400) {
      const text = Array.isArray(out[1]) ? out[1].join(' ') : (out[1] ?? '');
      hooks.onErrorReply(formatReply({ code: out[0], text }));
    }
    send(...out);
  };
}
