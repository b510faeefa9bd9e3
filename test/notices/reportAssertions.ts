import assert from 'node:assert/strict';
import { simpleParser, type ParsedMail } from 'mailparser';
import type { CapturedMessage } from '../../testbed/fakes/fakeExchangeOnline.ts';

/**
 * Checks that what the fake Exchange Online took is an RFC 3464 failure report to `to` about
 * `finalRecipient`: envelope sender <>, multipart/report of the three parts, Action: failed (or delayed), the
 * original's header and never its body. Returns the parsed mail.
 */
export async function assertFailureReport(
  notice: CapturedMessage,
  expected: { to: string; from: string; finalRecipient: string; status: string; bodyMarker: string; action?: 'failed' | 'delayed' },
): Promise<ParsedMail> {
  assert.equal(notice.mailFrom, '', 'envelope sender <>');
  // Addresses compare case-insensitively (the fake's SMTP server lowercases the domain).
  const lower = (addresses: (string | undefined)[]) => addresses.map((a) => a?.toLowerCase());
  assert.deepEqual(lower(notice.rcptTo), lower([expected.to]));
  const raw = notice.raw.toString('utf8');
  assert.doesNotMatch(raw, new RegExp(expected.bodyMarker), 'never the original body');
  const parsed = await simpleParser(notice.raw);
  assert.equal(parsed.from?.value[0]?.address, expected.from);
  assert.deepEqual(lower((Array.isArray(parsed.to) ? parsed.to : [parsed.to]).flatMap((t) => t?.value.map((v) => v.address) ?? [])), lower([expected.to]));
  const contentType = parsed.headers.get('content-type') as { value: string; params: Record<string, string> };
  assert.equal(contentType.value, 'multipart/report');
  assert.equal(contentType.params['report-type'], 'delivery-status');
  const parts = raw.split(`--${contentType.params.boundary}`).slice(1, -1);
  assert.deepEqual(parts.map((p) => /Content-Type: ([^;\r\n]+)/i.exec(p)?.[1]), ['text/plain', 'message/delivery-status', 'text/rfc822-headers']);
  const status = parts[1] ?? '';
  assert.match(status, new RegExp(`^Final-Recipient: rfc822; ${expected.finalRecipient.replace(/[.+]/g, '\\$&')}\\r$`, 'm'));
  assert.match(status, new RegExp(`^Action: ${expected.action ?? 'failed'}\\r$`, 'm'));
  assert.match(status, new RegExp(`^Status: ${expected.status.replace(/\./g, '\\.')}\\r$`, 'm'));
  return parsed;
}
