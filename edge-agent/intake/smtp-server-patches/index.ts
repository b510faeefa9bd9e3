import type { Logger } from 'pino';
// Inlined by the build: the single executable has no node_modules to read it from at run time.
import smtpServerPackage from 'smtp-server/package.json' with { type: 'json' };
import { installDataScanner } from './dataScanner.ts';
import { installPipelineContinuation } from './pipelineContinuation.ts';
import { installServerReplies } from './serverReplies.ts';

/**
 * The only place the agent changes smtp-server's private prototypes. Each patch replaces one
 * method, keeps its contract, and has a test that fails when an update of smtp-server breaks it:
 *
 * - `dataScanner.ts`, `SMTPStream._feedDataStream`: finds line-start dots with Buffer.indexOf
 *   instead of a JavaScript loop over every byte. Measured with `npm run bench:scanner` (the
 *   parser alone, 64 KiB reads): see docs/benchmark.md, "smtp-server patches". Differential test:
 *   test/intake/dataScanner.test.ts (both versions, the same random inputs and splits).
 * - `serverReplies.ts`, `SMTPConnection.send`: gives smtp-server's own size and idle replies an
 *   enhanced status code and the agent's wording (RFC 3463); no speed claim. Tests: the
 *   bad-input catalogue and test/intake/sizeLimit.test.ts assert those replies.
 * - `pipelineContinuation.ts`, `SMTPStream.continue`: fixes a stall of whole transactions sent in
 *   one write (smtp-server clears the continuation after running it). A bug fix, not speed.
 *   Test: test/intake/pipelinedTransactions.test.ts.
 *
 * smtp-server is pinned to exactly `PATCHED_SMTP_SERVER` in package.json: an update is a
 * deliberate change that runs those tests (test/intake/smtpServerPatches.test.ts fails first).
 */
export const PATCHED_SMTP_SERVER = '3.21.6';

/** The smtp-server version installed (built in). */
export function installedSmtpServerVersion(): string {
  return smtpServerPackage.version;
}

/**
 * Installs the three patches (once; later calls change nothing). A patch whose method is gone
 * is left out with a warning saying what the agent loses; the version check only warns too, since
 * a patch that still finds its method keeps its contract test.
 */
export function installSmtpServerPatches(logger: Pick<Logger, 'warn'>): void {
  const version = installedSmtpServerVersion();
  if (version !== PATCHED_SMTP_SERVER) {
    logger.warn({ installed: version, patchedFor: PATCHED_SMTP_SERVER }, 'smtp-server is not the version the intake patches were written for; see edge-agent/intake/smtp-server-patches/index.ts');
  }
  if (!installServerReplies()) {
    logger.warn('smtp-server changed its reply writer: some of its replies go out without an enhanced status code; see edge-agent/intake/smtp-server-patches/serverReplies.ts');
  }
  if (!installDataScanner()) {
    logger.warn('smtp-server changed its parser internals: using its own DATA parser (slower); see edge-agent/intake/smtp-server-patches/dataScanner.ts');
  }
  if (!installPipelineContinuation()) {
    logger.warn('smtp-server changed its parser internals: a client that sends whole transactions in one write may stall; see edge-agent/intake/smtp-server-patches/pipelineContinuation.ts');
  }
}
