import { randomInt } from 'node:crypto';

export interface CrashSettings {
  /** Seeds the kill plan and the messages; printed so that a failing run can be replayed. */
  seed: number;
  /** Kill rounds over both variants (embedded and cloud). */
  rounds: number;
  /** Where to write the run's figures as JSON (scripts/crash-soak.ts reads them). */
  reportPath: string | undefined;
}

export const DEFAULT_CRASH_ROUNDS = 10;

/**
 * SMARTHOST_CRASH_SEED (default: a fresh random seed), SMARTHOST_CRASH_ROUNDS (default 10) and
 * SMARTHOST_CRASH_REPORT. A malformed value fails with the variable's name rather than running
 * a different test than the one asked for.
 */
export function crashSettings(env: NodeJS.ProcessEnv = process.env): CrashSettings {
  return {
    seed: wholeNumber(env, 'SMARTHOST_CRASH_SEED', 0, 2 ** 32 - 1) ?? randomInt(2 ** 31),
    rounds: wholeNumber(env, 'SMARTHOST_CRASH_ROUNDS', 2, 10_000) ?? DEFAULT_CRASH_ROUNDS,
    reportPath: env.SMARTHOST_CRASH_REPORT || undefined,
  };
}

function wholeNumber(env: NodeJS.ProcessEnv, name: string, min: number, max: number): number | undefined {
  const text = env[name];
  if (text === undefined || text === '') return undefined;
  const value = Number(text);
  if (!/^\d+$/.test(text.trim()) || value < min || value > max) {
    throw new RangeError(`${name} must be a whole number from ${min} to ${max}, got ${JSON.stringify(text)}`);
  }
  return value;
}
