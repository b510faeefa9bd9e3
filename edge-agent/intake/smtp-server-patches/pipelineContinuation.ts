import { SMTPStream } from 'smtp-server/lib/smtp-stream.js';

/**
 * smtp-server 3.21's `SMTPStream.continue()` runs the continuation left by the end of DATA (parse
 * what the client sent after the message) and only then clears it. When that parse reaches the
 * end of a further message at once (a client that sent whole transactions in one write, as
 * `nc host 25 < session.txt` does, and the agent answers MAIL and RCPT synchronously), the
 * continuation that end of data sets is the one cleared: its reply goes out, but the input after
 * it is never read again and the session hangs until the idle timeout. Clearing the slot before
 * running the continuation keeps the new one. This costs nothing per command, unlike answering
 * MAIL, RCPT and DATA on a later event-loop turn, which would also avoid it.
 */
function continueParsing(this: SMTPStream): void {
  const next = this._continueCallback;
  if (typeof next === 'function') {
    this._continueCallback = false;
    next();
    return;
  }
  // continue() before the end of data arrived: _endDataMode carries on as soon as it does.
  this._continueCallback = true;
}

let installed = false;

/**
 * Puts the fixed `continue` in place (once). Returns false, changing nothing, when smtp-server no
 * longer has the slot the fix relies on (an update, which may have fixed it its own way);
 * test/intake/pipelinedTransactions.test.ts then says whether pipelined sessions still work.
 */
export function installPipelineContinuation(): boolean {
  if (installed) return true;
  const proto = SMTPStream.prototype;
  if (typeof proto.continue !== 'function' || !('_continueCallback' in new SMTPStream())) {
    return false;
  }
  proto.continue = continueParsing;
  installed = true;
  return true;
}
