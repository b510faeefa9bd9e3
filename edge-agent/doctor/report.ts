import type { Writable } from 'node:stream';

/** `smarthost doctor`'s exit codes (README's command table lists them). */
export const DOCTOR_EXIT = {
  /** Every check passed; warnings may have been printed. */
  ok: 0,
  /** The configuration did not load (the CLI's own code for every command). */
  configInvalid: 1,
  /**
   * A check failed that stops mail from being delivered. After a blocking one the checks after it
   * did not run; the cloud permission checks each run, so one run names every missing grant.
   */
  blocked: 3,
} as const;

export type StepStatus = 'ok' | 'warn' | 'fail' | 'info';

export interface StepResult {
  /** Short name of the step: 'dns', 'tcp', 'starttls', 'token', ... */
  step: string;
  status: StepStatus;
  /** What was found; never a secret or a token. */
  detail: string;
  /** What to change, with the values filled in; for warn and fail. */
  fix?: string;
}

/** Thrown by a check whose failure makes the later steps pointless. */
export class BlockingProblem extends Error {
  constructor(readonly result: StepResult) {
    super(`${result.step}: ${result.detail}`);
    this.name = 'BlockingProblem';
  }
}

const LABELS: Record<StepStatus, string> = { ok: 'ok  ', warn: 'WARN', fail: 'FAIL', info: 'info' };

/** One line per step, the fix indented under it, written as each step finishes. */
export class DoctorReport {
  readonly results: StepResult[] = [];
  /**
   * Renames config keys in what is printed: a pool mailbox with credentials of its own is fixed at
   * `upstream.mailboxes[i].auth...`, not at the `upstream.auth...` the checks name.
   */
  keyRename: ((text: string) => string) | undefined;

  constructor(private readonly out: Writable) {}

  add(given: StepResult): void {
    const rename = this.keyRename;
    const result = rename ? { ...given, detail: rename(given.detail), ...(given.fix ? { fix: rename(given.fix) } : {}) } : given;
    this.results.push(result);
    let text = `${LABELS[result.status]}  ${result.step.padEnd(10)} ${result.detail}\n`;
    if (result.fix) text += `      ${''.padEnd(10)} fix: ${result.fix}\n`;
    this.out.write(text);
  }

  /** A line above a group of steps (each mailbox of a pool); not a result. */
  heading(text: string): void {
    this.out.write(`== ${text}\n`);
  }

  ok(step: string, detail: string): void {
    this.add({ step, status: 'ok', detail });
  }

  info(step: string, detail: string): void {
    this.add({ step, status: 'info', detail });
  }

  warn(step: string, detail: string, fix?: string): void {
    this.add({ step, status: 'warn', detail, ...(fix ? { fix } : {}) });
  }

  /** Records the failure and stops the run. */
  fail(step: string, detail: string, fix?: string): never {
    const result: StepResult = { step, status: 'fail', detail, ...(fix ? { fix } : {}) };
    throw new BlockingProblem(result);
  }
}
