import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { SMTPConnection } from 'smtp-server/lib/smtp-connection.js';
import { SMTPStream } from 'smtp-server/lib/smtp-stream.js';
import type { Logger } from 'pino';
import { installedSmtpServerVersion, installSmtpServerPatches, PATCHED_SMTP_SERVER } from '../../edge-agent/intake/smtp-server-patches/index.ts';

/**
 * The intake patches three private methods of smtp-server. An update of smtp-server must be a
 * deliberate change: this fails first, then the patches' own tests say whether they still hold.
 */
describe('smtp-server patches', () => {
  test('package.json pins smtp-server to exactly the version the patches were written for', () => {
    const manifest = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { dependencies: Record<string, string> };
    assert.equal(manifest.dependencies['smtp-server'], PATCHED_SMTP_SERVER);
    assert.equal(installedSmtpServerVersion(), PATCHED_SMTP_SERVER);
  });

  test('every patched method is still there, and installing replaces each one without a warning', () => {
    const before = {
      feed: SMTPStream.prototype._feedDataStream,
      cont: SMTPStream.prototype.continue,
      send: SMTPConnection.prototype.send,
    };
    for (const method of Object.values(before)) assert.equal(typeof method, 'function');
    const warnings: unknown[] = [];
    const logger = { warn: (...args: unknown[]) => void warnings.push(args) } as unknown as Pick<Logger, 'warn'>;
    installSmtpServerPatches(logger);
    assert.deepEqual(warnings, []);
    assert.notEqual(SMTPStream.prototype._feedDataStream, before.feed);
    assert.notEqual(SMTPStream.prototype.continue, before.cont);
    assert.notEqual(SMTPConnection.prototype.send, before.send);
    // Installing again changes nothing.
    const after = SMTPStream.prototype._feedDataStream;
    installSmtpServerPatches(logger);
    assert.equal(SMTPStream.prototype._feedDataStream, after);
    assert.deepEqual(warnings, []);
  });
});
