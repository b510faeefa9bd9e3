/**
 * Exchange Online's limits for client submission (SMTP AUTH), per mailbox unless said otherwise
 * (../shared/docs/exchange-online.md). The config defaults and the pool's counters read them here.
 */
export const EXCHANGE_LIMITS = {
  messagesPerMinute: 30,
  connections: 3,
  /** Recipients per mailbox over a rolling 24 hours. */
  recipientsPerDay: 10_000,
  /** What one recipient mailbox receives in an hour, from all senders. */
  messagesPerHourPerRecipient: 3_600,
} as const;

/** Exchange's recipient budget window: rolling 24 hours. */
export const RECIPIENT_BUDGET_WINDOW_MS = 24 * 3_600_000;

/** The receiving limit's window. */
export const RECIPIENT_RATE_WINDOW_MS = 3_600_000;
