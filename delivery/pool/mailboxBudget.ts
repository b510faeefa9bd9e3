import type { RollingBuckets } from './rollingCount.ts';

/**
 * Where the pool takes each delivery's share of a mailbox's budgets: Exchange's recipients per
 * rolling 24 hours and messages per minute. One interface, two implementations: the office box's
 * spool file (one process: the pool's own counts are the whole truth, the file keeps them across
 * a restart) and the cloud's DynamoDB counter (every function instance takes from the same item,
 * with conditional writes, so two instances cannot both pass a limit).
 */
export interface MailboxBudgetStore {
  /** The counts this process starts from, by lowercased mailbox: the spool file's after a restart; none for a shared store. */
  load(): Promise<Record<string, RollingBuckets>>;
  /**
   * Takes one delivery's share once the pool's own counts let it go: `recipients` of
   * `recipientsPerDay` (when set) and one message of `perMinute` (when set). A shared store
   * decides against every process using it; a store of one process records and grants.
   */
  take(request: BudgetTake): Promise<BudgetAnswer>;
  /** Gives back what a granted take did not use: recipients the upstream did not accept, and the message when nothing was sent. */
  giveBack(grant: BudgetGrant, unused: { recipients: number; message: boolean }, counts: () => Record<string, RollingBuckets>): Promise<void>;
  /** Writes still under way finish (shutdown). */
  flush(): Promise<void>;
  /**
   * Exchange Online throttled or blocked the mailbox: every process's takes are refused until
   * `until` (a shared store). Absent in a store of one process, whose pool's own pause is the whole truth.
   */
  pause?(mailbox: string, until: number): Promise<void>;
}

export interface BudgetTake {
  /** Lowercased. */
  mailbox: string;
  recipients: number;
  recipientsPerDay?: number;
  perMinute?: number;
  now: number;
  /** This process's counts of every mailbox, this take included: what a store of one process keeps. */
  counts: () => Record<string, RollingBuckets>;
}

/** A take the store granted: what it needs to give part of it back. */
export interface BudgetGrant {
  mailbox: string;
  /** When it was taken (which of the store's buckets it went into). */
  at: number;
  recipients: number;
  /** A message of perMinute was counted. */
  message: boolean;
}

/** Which of Exchange's limits a refused take would have passed, or `paused`: another process was throttled on the mailbox. */
export type BudgetLimit = 'recipientsPerDay' | 'perMinute' | 'paused';

export type BudgetAnswer = { granted: BudgetGrant } | { refused: { limit: BudgetLimit; retryAt: number } };

/** Why a mailbox waits, in words (logs, the retry's reason, the history): names the mailbox and the limit. */
export function describeBudgetLimit(mailbox: string | undefined, limit: BudgetLimit, value: number | undefined, retryAt: number): string {
  if (limit === 'paused') return `${mailbox ?? 'the mailbox'} is held after Exchange Online throttled or blocked it until ${new Date(retryAt).toISOString()}`;
  const what = limit === 'recipientsPerDay' ? 'recipients per 24 hours' : 'messages per minute';
  return `${mailbox ?? 'the mailbox'} reached its ${value === undefined ? '' : `${value} `}${what} until ${new Date(retryAt).toISOString()}`;
}
