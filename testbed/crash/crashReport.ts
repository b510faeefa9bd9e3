/**
 * The figures of one crash run, as crash.test.ts writes them to SMARTHOST_CRASH_REPORT and
 * scripts/crash-soak.ts reads them back.
 */
export interface RunFigures {
  variant: 'embedded' | 'cloud';
  rounds: number;
  kills: { round: number; process: string; mode: string; instantReached: boolean }[];
  messages: number;
  attempts: number;
  acknowledged: number;
  arrivals: number;
  lost: number;
  unexplainedDuplicates: number;
  windowDuplicateCopies: number;
  retryDuplicateCopies: number;
  unacknowledgedDelivered: number;
  /** Cloud: SendMessage calls SQS took twice for one agent id (the ledger kept them from the upstream). */
  sqsDuplicateHandOvers?: number;
  durationMs: number;
}

export interface CrashReport {
  seed: number;
  rounds: number;
  runs: RunFigures[];
}
