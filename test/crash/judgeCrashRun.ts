import type { DeviceAttempt } from './DeviceFleet.ts';

/** One kill -9 and what the killed process had not finished at that moment. */
export interface KillRecord {
  round: number;
  process: 'agent' | 'worker';
  mode: string;
  /**
   * Upstream arrivals counted once the killed process's connections were closed and before the
   * next incarnation started: arrivals at lower positions came from earlier incarnations, those
   * at this position or later from later ones.
   */
  arrivalsBeforeRestart: number;
  /**
   * SHA-256 of the messages the killed process had not recorded as done: for the agent in
   * embedded mode what was still committed in its spool, for the worker what the ledger did not
   * mark done. Empty for the agent in cloud mode, whose crashes may duplicate SQS messages but
   * never an upstream delivery (the ledger deduplicates on the agent's id).
   */
  unfinished: ReadonlySet<string>;
}

export interface DuplicateFinding {
  key: string;
  copies: number;
  acknowledged: boolean;
  /** Rounds whose kill explains an extra copy; empty for an unexplained duplicate. */
  explainedBy: number[];
}

export interface CrashVerdict {
  messages: number;
  attempts: number;
  /** Attempts whose device read a 250. */
  acknowledged: number;
  /** Upstream arrivals, duplicates included. */
  arrivals: number;
  /** Acknowledged attempts that never arrived upstream. Must be empty. */
  lost: string[];
  /** Arrivals whose bytes match no attempt (torn, altered or foreign). Must be 0. */
  unknownArrivals: number;
  /**
   * One accepted message delivered more than once, every extra copy explained: a kill of the
   * process delivering it came after the upstream took a copy and before that process recorded
   * it, and the next copy came from a later incarnation.
   */
  windowDuplicates: DuplicateFinding[];
  /** Extra copies no kill explains. Must be empty. */
  unexplainedDuplicates: DuplicateFinding[];
  /**
   * A device message that arrived through more than one attempt: the device retried because it
   * never saw the 250 of an attempt the agent had already committed.
   */
  retryDuplicates: { messageKey: string; attempts: string[] }[];
  /** Attempts whose device never saw a 250 but which arrived anyway (committed, cut before the reply). */
  unacknowledgedDelivered: number;
  /** Messages with more than one acknowledged attempt. Must be empty (a device stops at its 250). */
  acknowledgedTwice: string[];
  /** Messages without an acknowledged attempt (the device gave up). Must be empty. */
  unsettled: string[];
}

/**
 * Judges a crash run from the device side (what each attempt was told), the upstream side (the
 * SHA-256 of each arrival, in order) and the kills. Stated precisely, the run is correct when:
 * 1. every attempt that got a 250 arrived at least once (nothing acknowledged is lost);
 * 2. every arrival is the exact bytes of some attempt;
 * 3. one attempt arrives twice only when, between the two copies, a process that held it
 *    unfinished was killed (the upstream had taken it, the removal from the spool / the ledger's
 *    "done" had not happened) and a new incarnation sent the second copy;
 * 4. a device message arrives through two attempts only when all but the last (acknowledged) one
 *    never got a 250: the device retried a message the agent had committed without telling it.
 */
export function judgeCrashRun(attempts: readonly DeviceAttempt[], arrivals: readonly string[], kills: readonly KillRecord[]): CrashVerdict {
  const bySha = new Map(attempts.map((a) => [a.sha256, a]));
  const positions = new Map<string, number[]>();
  let unknownArrivals = 0;
  arrivals.forEach((sha, index) => {
    if (!bySha.has(sha)) unknownArrivals += 1;
    positions.set(sha, [...(positions.get(sha) ?? []), index]);
  });

  const windowDuplicates: DuplicateFinding[] = [];
  const unexplainedDuplicates: DuplicateFinding[] = [];
  for (const attempt of attempts) {
    const at = positions.get(attempt.sha256) ?? [];
    if (at.length < 2) continue;
    const explainedBy: number[] = [];
    let explained = true;
    for (let i = 1; i < at.length; i++) {
      const first = at[i - 1] as number;
      const second = at[i] as number;
      const kill = kills.find((k) => k.unfinished.has(attempt.sha256) && first < k.arrivalsBeforeRestart && k.arrivalsBeforeRestart <= second);
      if (kill) explainedBy.push(kill.round);
      else explained = false;
    }
    const finding = { key: attempt.key, copies: at.length, acknowledged: attempt.outcome === 'acknowledged', explainedBy: explained ? explainedBy : [] };
    (explained ? windowDuplicates : unexplainedDuplicates).push(finding);
  }

  const byMessage = new Map<string, DeviceAttempt[]>();
  for (const attempt of attempts) byMessage.set(attempt.messageKey, [...(byMessage.get(attempt.messageKey) ?? []), attempt]);
  const retryDuplicates: CrashVerdict['retryDuplicates'] = [];
  const acknowledgedTwice: string[] = [];
  const unsettled: string[] = [];
  for (const [messageKey, tries] of byMessage) {
    const delivered = tries.filter((a) => positions.has(a.sha256));
    if (delivered.length > 1) retryDuplicates.push({ messageKey, attempts: delivered.map((a) => a.key) });
    const acked = tries.filter((a) => a.outcome === 'acknowledged').length;
    if (acked > 1) acknowledgedTwice.push(messageKey);
    if (acked === 0) unsettled.push(messageKey);
  }

  const acknowledged = attempts.filter((a) => a.outcome === 'acknowledged');
  return {
    messages: byMessage.size,
    attempts: attempts.length,
    acknowledged: acknowledged.length,
    arrivals: arrivals.length,
    lost: acknowledged.filter((a) => !positions.has(a.sha256)).map((a) => a.key),
    unknownArrivals,
    windowDuplicates,
    unexplainedDuplicates,
    retryDuplicates,
    unacknowledgedDelivered: attempts.filter((a) => a.outcome !== 'acknowledged' && positions.has(a.sha256)).length,
    acknowledgedTwice,
    unsettled,
  };
}

/** Extra copies beyond the first, over both kinds of allowed duplicate. */
export function duplicateCopies(verdict: CrashVerdict): { window: number; retry: number } {
  return {
    window: verdict.windowDuplicates.reduce((sum, d) => sum + d.copies - 1, 0),
    retry: verdict.retryDuplicates.reduce((sum, d) => sum + d.attempts.length - 1, 0),
  };
}
