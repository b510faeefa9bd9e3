import { SMTPConnection } from 'smtp-server/lib/smtp-connection.js';

/**
 * Replies smtp-server writes itself, without an enhanced status code (RFC 3463) and with its own
 * wording, given the agent's: a device or an operator then sees the same reply for the same cause
 * whichever of the two decided it. smtp-server's `hideENHANCEDSTATUSCODES: false` is no option:
 * it would put a second code in front of every reply the agent builds, which carry their own.
 */
const REPLACEMENTS: { code: number; text: RegExp; reply: string }[] = [
  // SIZE= at MAIL FROM above listen.maxMessageSize: what SizeLimit answers for the bytes themselves.
  { code: 552, text: /^Error: message exceeds fixed maximum message size \d+$/, reply: '5.3.4 Message size exceeds fixed maximum message size' },
  { code: 421, text: /^Timeout - closing connection$/, reply: '4.4.2 Idle too long: closing connection' },
];

let installed = false;

/**
 * Wraps smtp-server's reply writer (once). Returns false, changing nothing, when smtp-server no
 * longer has the method (an update): its own replies then go out as they are.
 */
export function installServerReplies(): boolean {
  if (installed) return true;
  const proto = SMTPConnection.prototype;
  const original = proto.send;
  if (typeof original !== 'function') return false;
  proto.send = function (this: SMTPConnection, code, data, context) {
    if (typeof data === 'string') {
      const replacement = REPLACEMENTS.find((r) => r.code === code && r.text.test(data));
      if (replacement) {
        original.call(this, code, replacement.reply, context);
        return;
      }
    }
    original.call(this, code, data, context);
  };
  installed = true;
  return true;
}
