import type { AlertThresholds } from '../config/alertsSchema.ts';

/** Every condition the office box alerts on; each is raised once and cleared once. */
export const CONDITION_IDS = [
  'held-for-operator',
  'oldest-message',
  'failed-attempts',
  'upstream-unreachable',
  'token-expiry',
  'certificate-expiry',
  'spool-fill',
] as const;
export type ConditionId = (typeof CONDITION_IDS)[number];

/**
 * What the agent knows at one moment, gathered by AlertSignals from the delivery loop's events,
 * the spool and the token client. Replies and fixes only: never a message body or a secret.
 */
export interface AlertSnapshot {
  /** Queued messages held for the operator, and the first one's reason and fix. */
  held: { count: number; reply?: string; fix?: string };
  /** Arrival time (ms) of the oldest message waiting or in flight. */
  oldestQueuedAt?: number;
  /** Attempts in a row that delivered to nobody, and the last one's reply. */
  failedInARow: number;
  lastFailure?: string;
  /** Since when every attempt failed before an SMTP reply (connect, TLS), and the last error. */
  unreachableSince?: number;
  unreachableError?: string;
  /** The token client: a renewal that failed after the last success, and when the held token expires. */
  token?: { renewalFailedAt?: number; error?: string; expiresAt?: number };
  /** When the upstream's certificate credential expires (auth.certificate). */
  certificateNotAfter?: number;
  /** Spool use in percent of spool.maxBytes, or of the disk it is on. */
  spoolFill?: { percent: number; of: 'spool.maxBytes' | 'disk' };
}

export interface RaisedCondition {
  id: ConditionId;
  /** One line, for a subject or a chat title. */
  title: string;
  /** What was seen, with the numbers. */
  detail: string;
  /** What the admin should do. */
  fix?: string;
  /** The upstream itself is broken: mail to the admin cannot go through it now. */
  upstreamBroken: boolean;
}

/** Conditions as titled in notices, also when they clear (the raised notice's detail is gone then). */
export const CONDITION_TITLES: Record<ConditionId, string> = {
  'held-for-operator': 'Mail is held for the operator',
  'oldest-message': 'Mail is waiting in the queue too long',
  'failed-attempts': 'Delivery attempts keep failing',
  'upstream-unreachable': 'Microsoft 365 cannot be reached',
  'token-expiry': 'The OAuth2 token cannot be renewed',
  'certificate-expiry': 'The upstream certificate credential expires soon',
  'spool-fill': 'The spool is filling up',
};

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

function minutes(ms: number): string {
  const m = Math.round(ms / 60_000);
  return m >= 120 ? `${Math.round(m / 60)} h` : `${m} min`;
}

/** The conditions that hold at `now`; a pure function of what the agent knows (tests give the clock). */
export function evaluateConditions(snapshot: AlertSnapshot, thresholds: AlertThresholds, now: number): RaisedCondition[] {
  const raised: RaisedCondition[] = [];
  const raise = (id: ConditionId, detail: string, fix?: string, upstreamBroken = false) =>
    raised.push({ id, title: CONDITION_TITLES[id], detail, ...(fix ? { fix } : {}), upstreamBroken });

  if (snapshot.held.count > 0) {
    raise(
      'held-for-operator',
      `${snapshot.held.count} queued message(s) wait for an admin to fix a cause Microsoft 365 named${snapshot.held.reply ? `: ${snapshot.held.reply}` : ''}.`,
      snapshot.held.fix ?? 'See `smarthost queue` or the console for the fix, then try the message again.',
    );
  }
  if (snapshot.oldestQueuedAt !== undefined && now - snapshot.oldestQueuedAt >= thresholds.oldestMessageAge) {
    raise(
      'oldest-message',
      `The oldest queued message arrived ${minutes(now - snapshot.oldestQueuedAt)} ago (${iso(snapshot.oldestQueuedAt)}); the limit is ${minutes(thresholds.oldestMessageAge)}.`,
      'See why with `smarthost queue`.',
    );
  }
  if (snapshot.failedInARow >= thresholds.failedAttempts) {
    raise(
      'failed-attempts',
      `The last ${snapshot.failedInARow} delivery attempts delivered to nobody${snapshot.lastFailure ? `; the last reply: ${snapshot.lastFailure}` : ''}.`,
      'See the replies with `smarthost queue` and `smarthost trace ID`.',
    );
  }
  if (snapshot.unreachableSince !== undefined && now - snapshot.unreachableSince >= thresholds.upstreamUnreachable) {
    raise(
      'upstream-unreachable',
      `No delivery attempt has reached the upstream since ${iso(snapshot.unreachableSince)}${snapshot.unreachableError ? ` (${snapshot.unreachableError})` : ''}.`,
      'Check the internet link, the firewall (outbound TCP 587) and `smarthost doctor`.',
      true,
    );
  }
  const token = snapshot.token;
  if (token?.renewalFailedAt !== undefined && (token.expiresAt === undefined || token.expiresAt - now <= thresholds.tokenExpiry)) {
    const left = token.expiresAt === undefined ? 'no valid token is held' : token.expiresAt <= now ? `the last token expired at ${iso(token.expiresAt)}` : `the current token expires at ${iso(token.expiresAt)}`;
    raise(
      'token-expiry',
      `A new OAuth2 token could not be had since ${iso(token.renewalFailedAt)}${token.error ? ` (${token.error})` : ''}; ${left}.`,
      'Run `smarthost doctor`: it names the fix (an expired client secret, a removed app, missing admin consent).',
      true,
    );
  }
  if (snapshot.certificateNotAfter !== undefined && snapshot.certificateNotAfter - now <= thresholds.certificateExpiry) {
    const expired = snapshot.certificateNotAfter <= now;
    raise(
      'certificate-expiry',
      `The certificate in upstream.auth.certificate ${expired ? 'expired' : 'expires'} at ${iso(snapshot.certificateNotAfter)}.`,
      'Make a new certificate, upload it to the app registration (Entra admin center > App registrations > Certificates & secrets) and point upstream.auth.certificate at it.',
      expired,
    );
  }
  if (snapshot.spoolFill && snapshot.spoolFill.percent >= thresholds.spoolFillPercent) {
    raise(
      'spool-fill',
      `The spool uses ${Math.round(snapshot.spoolFill.percent)}% of ${snapshot.spoolFill.of === 'disk' ? 'its disk' : 'spool.maxBytes'} (alert at ${thresholds.spoolFillPercent}%); when full, devices are refused with 452.`,
      'Find why mail is not leaving (the other alerts, `smarthost queue`), or give the spool more room.',
    );
  }
  return raised;
}
