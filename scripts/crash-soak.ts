/**
 * The long crash run: `node --import tsx scripts/crash-soak.ts [--rounds 50] [--seed N]`.
 * Runs test/crash/crash.test.ts with SMARTHOST_CRASH_ROUNDS kills (at least 50; about 40% of them
 * in cloud mode) and prints what it found: kills, messages acknowledged, lost, duplicated.
 * Exits non-zero when the suite fails (a lost or unexplained duplicate message fails it).
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { CrashReport, RunFigures } from '../testbed/crash/crashReport.ts';

const MIN_ROUNDS = 50;

const { values } = parseArgs({ options: { rounds: { type: 'string' }, seed: { type: 'string' } } });
const rounds = Number(values.rounds ?? process.env.SMARTHOST_CRASH_ROUNDS ?? MIN_ROUNDS);
if (!Number.isInteger(rounds) || rounds < 2) {
  process.stderr.write(`--rounds must be a whole number of at least 2, got ${values.rounds}\n`);
  process.exit(2);
}
if (rounds < MIN_ROUNDS) {
  process.stderr.write(`note: ${rounds} rounds is fewer than the soak's usual ${MIN_ROUNDS}\n`);
}

const suite = fileURLToPath(new URL('../test/crash/crash.test.ts', import.meta.url));
const dir = await mkdtemp(join(tmpdir(), 'smarthost-crash-soak-'));
const reportPath = join(dir, 'report.json');
const env: NodeJS.ProcessEnv = { ...process.env, SMARTHOST_CRASH_ROUNDS: String(rounds), SMARTHOST_CRASH_REPORT: reportPath };
const seed = values.seed ?? process.env.SMARTHOST_CRASH_SEED;
if (seed !== undefined) env.SMARTHOST_CRASH_SEED = seed;

const started = Date.now();
const child = spawn(process.execPath, ['--import', 'tsx', '--test', '--test-reporter=spec', suite], {
  cwd: fileURLToPath(new URL('..', import.meta.url)),
  env,
  stdio: 'inherit',
});
const [code] = (await once(child, 'exit')) as [number | null];

let report: CrashReport | undefined;
try {
  report = JSON.parse(await readFile(reportPath, 'utf8')) as CrashReport;
} catch {
  report = undefined;
}
await rm(dir, { recursive: true, force: true });

if (!report || report.runs.length === 0) {
  process.stderr.write('\nthe crash suite wrote no figures (it failed before finishing a run)\n');
  process.exit(code || 1);
}

const rows: Record<string, string | number>[] = report.runs.map((run) => ({
  variant: run.variant,
  kills: run.rounds,
  messages: run.messages,
  acknowledged: run.acknowledged,
  lost: run.lost,
  'dup (crash window)': run.windowDuplicateCopies,
  'dup (device retry)': run.retryDuplicateCopies,
  'dup (unexplained)': run.unexplainedDuplicates,
  'SQS double hand-overs': run.sqsDuplicateHandOvers ?? '-',
  seconds: Math.round(run.durationMs / 100) / 10,
}));
const total = (pick: (run: RunFigures) => number) => report.runs.reduce((sum, run) => sum + pick(run), 0);
rows.push({
  variant: 'total',
  kills: total((r) => r.rounds),
  messages: total((r) => r.messages),
  acknowledged: total((r) => r.acknowledged),
  lost: total((r) => r.lost),
  'dup (crash window)': total((r) => r.windowDuplicateCopies),
  'dup (device retry)': total((r) => r.retryDuplicateCopies),
  'dup (unexplained)': total((r) => r.unexplainedDuplicates),
  'SQS double hand-overs': total((r) => r.sqsDuplicateHandOvers ?? 0),
  seconds: Math.round((Date.now() - started) / 100) / 10,
});
process.stdout.write(`\ncrash soak, seed ${report.seed} (replay: SMARTHOST_CRASH_SEED=${report.seed})\n`);
console.table(rows);
const byMode = new Map<string, { kills: number; missed: number }>();
for (const kill of report.runs.flatMap((run) => run.kills)) {
  const key = `${kill.process}:${kill.mode}`;
  const entry = byMode.get(key) ?? { kills: 0, missed: 0 };
  entry.kills += 1;
  if (!kill.instantReached) entry.missed += 1;
  byMode.set(key, entry);
}
process.stdout.write(
  `kills by instant: ${[...byMode].map(([mode, e]) => `${mode} ${e.kills}${e.missed ? ` (${e.missed} killed anyway after waiting)` : ''}`).join(', ')}\n`,
);
process.stdout.write(
  `rounds: ${total((r) => r.rounds)}, messages acknowledged: ${total((r) => r.acknowledged)}, lost: ${total((r) => r.lost)}, ` +
    `duplicated: ${total((r) => r.windowDuplicateCopies + r.retryDuplicateCopies)} ` +
    `(${total((r) => r.windowDuplicateCopies)} in the crash window, ${total((r) => r.retryDuplicateCopies)} by device retries after a lost 250, ` +
    `${total((r) => r.unexplainedDuplicates)} unexplained)\n`,
);
process.exit(code ?? 1);
