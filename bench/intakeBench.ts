/**
 * Benchmark: starts `smarthost start` as its own process, the bundled build that `npm start` runs
 * (fsync before every 250), and, when Postfix is installed (and we are root), a Postfix instance
 * of its own, both relaying to the same fake Exchange Online with its limits off.
 *
 * Equal work (the comparison): both systems deliver everything they accept (the agent's rate
 * limit off too); a row ends only when the fake has every message the row accepted and both
 * queues are empty. Per row: intake msg/s, end-to-end time, end of DATA → 250 (p50/p95/p99), CPU
 * per message and peak memory of all the system's processes. Every trial's ratio is printed.
 * Office rows (labelled): the agent delivers at Exchange Online's 30 messages a minute, as an
 * office agent is set up, while Postfix relays at its own pace: unequal work, kept for the record.
 * Then the peak memory while ten 30 MiB messages arrive at once.
 * Console rows (issue 12): equal work by the agent alone, with its status listener off and on with
 * /metrics, /readyz and the overview fetched every second; every trial's ratio printed; then the
 * agent's CPU per scrape round.
 *
 * Drain rows (`--only drain`, about seven minutes, so not in a default run): smarthost alone, with
 * Exchange Online's limits on in the agent and in the fakes, per route: one SMTP mailbox (30
 * messages a minute), a pool of three (90), the Graph route (30: Exchange's rate, which the relay
 * keeps on Graph too, is far under Graph's own 10,000 requests per 10 minutes). Each prints the
 * measured drain rate, the throttling replies the agent got and the duplicates at the fake (both
 * must be 0). Postfix has no Graph route and no pool, so it is not measured there.
 *
 *   npm run bench -- [--quick] [--no-postfix] [--outbox | --unlimited] [--repeat N] [--only TEXT]
 *
 *   --quick       fewer messages and shorter caps: a pass in about two minutes
 *   --no-postfix  measure the agent only
 *   --outbox      the agent writes to its outbox (no upstream) during the office rows
 *   --unlimited   during the office rows the agent delivers as fast as it can (default: at
 *                 Exchange Online's 30 messages a minute, its production setting)
 *   --repeat N    run every row N times, the systems taking turns going first; every trial is printed
 *   --only TEXT   only the rows whose name contains TEXT ('equal', 'office', '10 conn', '5 MiB', 'all of', '30 MiB at once', 'console',
 *                 'drain': the drain rows, only run when named, e.g. 'drain', 'drain: graph', 'pool')
 *
 * Not part of `npm test`: the numbers depend on the machine and on what else it is doing.
 * docs/benchmark.md explains every column.
 */
import { execFile, execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { cpus, loadavg } from 'node:os';
import { caPem } from '../testbed/fakes/tlsFixtures.ts';
import { killAgentsNow, startAgent } from './lib/agent.ts';
import { scrapeConsole, scrapeOnce, SCRAPED_PATHS, type ScrapeReport } from './lib/consoleScraper.ts';
import { abortPostfixNow, findPostfix, startPostfix, type PostfixTools } from './lib/postfix.ts';
import { TreeSampler, type MemoryReport } from './lib/procMemory.ts';
import { KiB, MiB, percentile, runNodemailer, runRaw, type LoadResult } from './lib/smtpLoad.ts';
import { fixed, formatTable, ratio } from './lib/table.ts';
import { startFakeUpstream, type FakeUpstream } from './lib/upstream.ts';
import { agentQueueDepth, postfixQueueDepth } from './lib/queueDepth.ts';
import { join } from 'node:path';
import { DRAIN_MEASURED_MINUTES, DRAIN_SCENARIOS, measureDrain, type DrainRow } from './lib/drain.ts';

const run = promisify(execFile);

const OPTIONS_HELP = 'options: --quick  --no-postfix  --outbox  --unlimited  --repeat N  --only TEXT';
function parseOptions(argv: string[]) {
  const options = { quick: false, postfix: true, outbox: false, unlimited: false, repeat: 1, only: undefined as string | undefined };
  for (let i = 0; i < argv.length; i++) {
    const [name, inline] = argv[i]!.split('=', 2) as [string, string | undefined];
    const value = () => inline ?? argv[++i] ?? '';
    if (name === '--quick') options.quick = true;
    else if (name === '--no-postfix') options.postfix = false;
    else if (name === '--outbox') options.outbox = true;
    else if (name === '--unlimited') options.unlimited = true;
    else if (name === '--repeat') options.repeat = Number(value());
    else if (name === '--only') options.only = value().toLowerCase();
    else {
      console.error(`unknown option ${argv[i]}; ${OPTIONS_HELP}`);
      process.exit(2);
    }
  }
  if (options.outbox && options.unlimited) {
    console.error(`--outbox and --unlimited exclude each other; ${OPTIONS_HELP}`);
    process.exit(2);
  }
  if (!Number.isInteger(options.repeat) || options.repeat < 1) {
    console.error(`--repeat takes a whole number of trials, at least 1; ${OPTIONS_HELP}`);
    process.exit(2);
  }
  return options;
}
const options = parseOptions(process.argv.slice(2));
const { quick } = options;
const agentOutbox = options.outbox;
const selected = (name: string) => options.only === undefined || name.toLowerCase().includes(options.only);
/** The drain rows take minutes at Exchange's pace: only when --only names them. */
const drainSelected = (name: string) => options.only !== undefined && name.toLowerCase().includes(options.only);

/** Postfix measured by an earlier session on a 2-core machine (issue 5); used when Postfix is absent. */
const REFERENCE = {
  kib1: { msgPerSec: 317, p99: 67 },
  kib100: { msgPerSec: 221, p99: 115 },
  mib5: { mibPerSec: 116 },
  pssMiB: 95,
};

type SystemName = 'smarthost' | 'Postfix' | typeof SCRAPED;
/** The agent with its status listener on and scraped (the console rows). */
const SCRAPED = 'smarthost, console scraped';

interface SystemUnderTest {
  port: number;
  /** The agent's status listener, when it has one on. */
  statusPort?: number;
  /** The process whose tree is measured. */
  root(): number | undefined;
  /** Messages still in the system's queue (accepted, not yet delivered). */
  queued(): Promise<number>;
  diagnostics(): string;
  stop(): Promise<void>;
}

interface System {
  name: SystemName;
  start(purpose: 'intake' | 'delivery'): Promise<SystemUnderTest>;
}

interface Scenario {
  name: string;
  size: number;
  connections: number;
  messages: number;
  client: 'raw' | 'nodemailer';
}

interface IntakeRow {
  scenario: Scenario;
  system: SystemName;
  result?: LoadResult;
  mem?: MemoryReport;
  /** Messages the fake upstream received while the row was being sent. */
  delivered?: number;
  error?: string;
}

const cap = quick ? 2.5 : 10; // seconds of sending per scenario at most
const warmUp = quick ? 1 : 2; // seconds of 1 KiB messages before each row's measured part
const n = (full: number) => (quick ? Math.max(1, Math.ceil(full / 5)) : full);

const SIZES = [
  { label: '1 KiB', size: KiB, messages: [3000, 10_000, 10_000] },
  { label: '100 KiB', size: 100 * KiB, messages: [1500, 5000, 5000] },
  { label: '5 MiB', size: 5 * MiB, messages: [40, 120, 150] },
];
const CONNECTIONS = [1, 10, 50];

const matrix: Scenario[] = SIZES.flatMap(({ label, size, messages }) =>
  CONNECTIONS.map((connections, i) => ({ name: `office: ${label}, ${connections} conn`, size, connections, messages: n(messages[i]!), client: 'raw' as const })),
);
/** Rows the first version of this benchmark printed, kept for comparison with earlier runs. */
const extra: Scenario[] = [
  { name: 'office: 1 KiB, 10 conn (nodemailer)', size: KiB, connections: 10, messages: n(5000), client: 'nodemailer' },
  { name: 'office: 30 MiB, 1 conn', size: 30 * MiB, connections: 1, messages: quick ? 1 : 3, client: 'raw' },
];

/**
 * Equal-work rows: both systems deliver everything; `cap` limits the seconds of sending (intake
 * rows), absent the row sends all its messages (accept + deliver all).
 */
interface EqualScenario extends Scenario {
  cap?: number;
}
const EQUAL_SIZES = [
  { label: '1 KiB', size: KiB, messages: 10_000 },
  { label: '100 KiB', size: 100 * KiB, messages: 5000 },
  { label: '5 MiB', size: 5 * MiB, messages: 150 },
];
const equal: EqualScenario[] = [
  ...EQUAL_SIZES.flatMap(({ label, size, messages }) =>
    [10, 50].map((connections) => ({ name: `equal: ${label}, ${connections} conn`, size, connections, messages: n(messages), client: 'raw' as const, cap })),
  ),
  { name: `equal: all of ${n(2000)} × 1 KiB, 10 conn`, size: KiB, connections: 10, messages: n(2000), client: 'raw' },
  { name: `equal: all of ${n(600)} × 100 KiB, 10 conn`, size: 100 * KiB, connections: 10, messages: n(600), client: 'raw' },
];
/** Issue 12: the same equal work with the console off and scraped every second. */
const consoleRows: EqualScenario[] = [
  { name: 'console: 1 KiB, 10 conn', size: KiB, connections: 10, messages: n(10_000), client: 'raw', cap },
  { name: 'console: 100 KiB, 10 conn', size: 100 * KiB, connections: 10, messages: n(5000), client: 'raw', cap },
];
/** Scrape rounds the CPU cost of one is measured over (the console rows' last line). */
const SCRAPE_COST_ROUNDS = quick ? 100 : 500;
/** How long an idle agent's own CPU use (timers) is measured, to take it out of the rounds' cost. */
const IDLE_CPU_SECONDS = quick ? 2 : 5;
/** How long a row may take to deliver what it accepted. */
const DRAIN_TIMEOUT_MS = quick ? 90_000 : 300_000;
const BIG = { messages: 10, size: 30 * MiB };

function emergencyStop(): void {
  killAgentsNow();
  abortPostfixNow();
}
process.on('exit', emergencyStop);
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(signal, () => {
    console.error(`\n${signal}: stopping everything started`);
    emergencyStop();
    process.exit(130);
  });
}

/** A limit no row reaches. */
const UNLIMITED = 1_000_000_000;

function agentSystem(upstream: FakeUpstream, status = false): System {
  return {
    name: status ? SCRAPED : 'smarthost',
    async start(purpose) {
      const deliver = purpose === 'delivery' || !agentOutbox;
      // Delivery runs: limits off, the agent sends as fast as it can on its 3 connections (the fake
      // has no limits either). Intake rows: Exchange Online's limits, as an office agent is set up,
      // unless --unlimited; the fake upstream's TLS work at full speed takes CPU from intake.
      const perMinute = purpose === 'delivery' || options.unlimited ? 1_000_000 : 30;
      // Every message of the benchmark goes to one recipient, and a row sends up to 10,000: the
      // mailbox's daily recipient budget and the per-recipient hourly limit (Exchange's 10,000 and
      // 3,600, which the agent keeps) would stop a row part way. The fake has neither.
      const rateLimit = { perMinute, connections: 3, recipientsPerDay: UNLIMITED, perRecipientPerHour: UNLIMITED };
      const agent = await startAgent({ ...(deliver ? { upstream: { ...upstream.upstream, rateLimit } } : {}), status });
      const spool = join(agent.dir, 'spool');
      return { port: agent.port, statusPort: agent.statusPort, root: () => agent.pid, queued: () => agentQueueDepth(spool), diagnostics: () => agent.lastLines(5).join('\n'), stop: () => agent.stop() };
    },
  };
}

function postfixSystem(tools: PostfixTools, upstream: FakeUpstream): System {
  return {
    name: 'Postfix',
    async start() {
      const instance = await startPostfix(tools, { port: upstream.port, user: upstream.basicUser, password: upstream.basicPassword, caPem });
      return { port: instance.port, root: () => instance.masterPid(), queued: () => postfixQueueDepth(instance.queueDir), diagnostics: () => instance.maillogTail(5), stop: () => instance.stop() };
    },
  };
}

/** Lets the disk catch up between rows, so that one row's writeback does not slow the next one's fsyncs. */
async function settle(): Promise<void> {
  await run('sync', []);
  await new Promise((resolve) => setTimeout(resolve, 500));
}

function describeError(error: unknown, sut: SystemUnderTest | undefined): string {
  const text = error instanceof Error ? error.message : String(error);
  return sut ? `${text}\n    last log lines:\n${sut.diagnostics().replace(/^/gm, '      ')}` : text;
}

/**
 * One row on a fresh instance: starts it, empties the fake's counters, runs `work`, and whatever
 * happens stops the instance and lets the disk settle. An error becomes the row's error text.
 */
async function onFreshInstance<Row>(
  system: System,
  purpose: 'intake' | 'delivery',
  upstream: FakeUpstream,
  work: (sut: SystemUnderTest) => Promise<Row>,
  failed: (error: string) => Row,
): Promise<Row> {
  let sut: SystemUnderTest | undefined;
  try {
    sut = await system.start(purpose);
    await upstream.reset();
    return await work(sut);
  } catch (error) {
    return failed(describeError(error, sut));
  } finally {
    await sut?.stop();
    await settle();
  }
}

function measureIntake(system: System, scenario: Scenario, upstream: FakeUpstream): Promise<IntakeRow> {
  return onFreshInstance<IntakeRow>(system, 'intake', upstream, async (sut) => {
    const sampler = await TreeSampler.start(sut.root);
    const spec = {
      connections: scenario.connections,
      messages: scenario.messages,
      size: scenario.size,
      maxSeconds: cap,
      warmUpSeconds: warmUp,
      onStart: () => sampler.mark(),
    };
    const result = await (scenario.client === 'raw' ? runRaw(sut.port, spec) : runNodemailer(sut.port, spec)).finally(() => sampler.stop());
    const delivered = (await upstream.stats()).count;
    return { scenario, system: system.name, result, mem: await sampler.stop(), delivered };
  }, (error) => ({ scenario, system: system.name, error }));
}

interface EqualRow {
  scenario: EqualScenario;
  system: SystemName;
  trial: number;
  /** Which system ran this trial first. */
  first: boolean;
  result?: LoadResult;
  /** From the measured part's start until the whole row (measured + delivery) is done. */
  mem?: MemoryReport;
  /** First measured send → the fake holds every message the measured part accepted. */
  endToEndSeconds?: number;
  delivered?: number;
  throttled?: number;
  /** The status listener's answers during the measured part (console rows). */
  scrape?: ScrapeReport;
  error?: string;
}

/** Resolves once the fake holds `count` messages since its last reset and the system's queue is empty. */
async function drained(sut: SystemUnderTest, upstream: FakeUpstream, count: number, timeoutMs: number) {
  const deadline = Date.now() + timeoutMs;
  const got = await upstream.waitFor(count, timeoutMs);
  if (got.error) return { got, error: `${got.error}; last upstream errors: ${JSON.stringify(got.errorReplies)}` };
  let queued = await sut.queued();
  while (queued > 0 && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 20));
    queued = await sut.queued();
  }
  return { got, error: queued > 0 ? `${queued} message(s) still queued after the fake had all ${count}` : undefined };
}

/**
 * One equal-work row: warm-up; then, before the clock starts, the warm-up's messages delivered,
 * both the queue and the fake's counters empty; then the measured sends; the row ends when the fake
 * has every message of the measured part and the system's queue is empty again.
 */
function measureEqual(system: System, scenario: EqualScenario, upstream: FakeUpstream, trial: number, first: boolean): Promise<EqualRow> {
  return onFreshInstance<EqualRow>(system, 'delivery', upstream, async (sut) => {
    const sampler = await TreeSampler.start(sut.root);
    let started = 0;
    let scraper: ReturnType<typeof scrapeConsole> | undefined;
    const row: EqualRow = { scenario, system: system.name, trial, first };
    try {
      row.result = await runRaw(sut.port, {
        connections: scenario.connections,
        messages: scenario.messages,
        size: scenario.size,
        maxSeconds: scenario.cap,
        warmUpSeconds: warmUp,
        onStart: async (warmUpSent) => {
          const warm = await drained(sut, upstream, warmUpSent, DRAIN_TIMEOUT_MS);
          if (warm.error) throw new Error(`warm-up not delivered: ${warm.error}`);
          await upstream.reset();
          sampler.mark();
          if (sut.statusPort !== undefined) scraper = scrapeConsole(sut.statusPort);
          started = Date.now();
        },
      });
      const { got, error } = await drained(sut, upstream, row.result.sent, DRAIN_TIMEOUT_MS);
      row.scrape = await scraper?.stop();
      row.delivered = got.count;
      row.throttled = got.throttled;
      if (error) row.error = error;
      else row.endToEndSeconds = (got.lastAt - started) / 1000;
    } finally {
      row.mem = await sampler.stop();
      if (scraper && !row.scrape) row.scrape = await scraper.stop();
    }
    return row;
  }, (error) => ({ scenario, system: system.name, trial, first, error }));
}

interface BigRow {
  system: SystemName;
  result?: LoadResult;
  intakeMem?: MemoryReport;
  /** Until all ten were delivered to the fake. */
  deliveryMem?: MemoryReport;
  deliveredSeconds?: number;
  error?: string;
}

function measureBig(system: System, upstream: FakeUpstream): Promise<BigRow> {
  return onFreshInstance<BigRow>(system, 'delivery', upstream, async (sut) => {
    const intake = await TreeSampler.start(sut.root, 100);
    const whole = await TreeSampler.start(sut.root, 100);
    let started = 0;
    const { result, got } = await (async () => {
      const result = await runRaw(sut.port, { connections: BIG.messages, messages: BIG.messages, size: BIG.size, onStart: () => void (started = Date.now()) }).finally(() =>
        intake.stop(),
      );
      const got = await upstream.waitFor(BIG.messages, 180_000);
      return { result, got };
    })().finally(() => Promise.all([intake.stop(), whole.stop()]));
    const intakeMem = await intake.stop();
    const deliveryMem = await whole.stop();
    const row: BigRow = { system: system.name, result, intakeMem, deliveryMem };
    if (got.error) row.error = got.error;
    else row.deliveredSeconds = (got.lastAt - started) / 1000;
    return row;
  }, (error) => ({ system: system.name, error }));
}

function intakeCells(row: IntakeRow | undefined): string[] {
  if (!row?.result || !row.mem) return Array(11).fill('-') as string[];
  const { result, mem, scenario } = row;
  const sorted = [...result.latencies].sort((a, b) => a - b);
  return [
    String(result.sent),
    fixed(result.sent / result.seconds, 1),
    fixed((result.sent * scenario.size) / MiB / result.seconds, 1),
    fixed(percentile(sorted, 50), 2),
    fixed(percentile(sorted, 95), 2),
    fixed(percentile(sorted, 99), 2),
    fixed(mem.idleRssMiB, 0),
    fixed(mem.peakRssMiB, 0),
    fixed(mem.peakPssMiB, 0),
    String(mem.peakProcesses),
    fixed((mem.cpuSeconds * 1000) / result.sent, 2),
  ];
}

interface Figures {
  msgPerSec: number;
  mibPerSec: number;
  p99: number;
  peakRssMiB: number;
  peakPssMiB: number;
}

function figures(row: IntakeRow | undefined): Figures | undefined {
  if (!row?.result || !row.mem) return undefined;
  const sorted = [...row.result.latencies].sort((a, b) => a - b);
  return {
    msgPerSec: row.result.sent / row.result.seconds,
    mibPerSec: (row.result.sent * row.scenario.size) / MiB / row.result.seconds,
    p99: percentile(sorted, 99),
    peakRssMiB: row.mem.peakRssMiB,
    peakPssMiB: row.mem.peakPssMiB,
  };
}

/**
 * The trial with the most messages/s. Other work on the machine only ever slows a trial down, so
 * the best one is the closest to what the system can do; the spread is printed beside it.
 */
function best(trials: IntakeRow[]): IntakeRow | undefined {
  const ok = trials.filter((t) => t.result);
  if (ok.length === 0) return trials[0];
  return [...ok].sort((x, y) => y.result!.sent / y.result!.seconds - x.result!.sent / x.result!.seconds)[0];
}

const mib = (size: number) => (size >= MiB ? `${size / MiB} MiB` : `${size / KiB} KiB`);

function equalCells(row: EqualRow): string[] {
  if (!row.result || !row.mem || row.error) return [`error: ${(row.error ?? '').split('\n')[0]}`];
  const { result, mem } = row;
  const sorted = [...result.latencies].sort((a, b) => a - b);
  return [
    String(result.sent),
    fixed(result.sent / result.seconds, 1),
    fixed(row.endToEndSeconds, 2),
    fixed(percentile(sorted, 50), 2),
    fixed(percentile(sorted, 95), 2),
    fixed(percentile(sorted, 99), 2),
    fixed((mem.cpuSeconds * 1000) / result.sent, 2),
    fixed(mem.peakRssMiB, 0),
    fixed(mem.peakPssMiB, 0),
    String(mem.peakProcesses),
    String(row.throttled ?? '-'),
  ];
}

/** One trial against another of the same row: intake msg/s, end to end (× faster), p99, CPU per message, and `memory`. */
function trialRatios(row: EqualRow, base: EqualRow | undefined, memory: (r: EqualRow) => number | undefined): string[] {
  const faster = (base?.endToEndSeconds ?? NaN) / (row.endToEndSeconds ?? NaN);
  const cpu = (r: EqualRow | undefined) => (r?.mem && r.result ? r.mem.cpuSeconds / r.result.sent : undefined);
  return [ratio(rate(row), rate(base)), Number.isFinite(faster) ? `${faster.toFixed(2)}×` : '-', ratio(p99(row), p99(base)), ratio(cpu(row), cpu(base)), ratio(row.mem && memory(row), base?.mem && memory(base))];
}

const p99 = (row: EqualRow | undefined) => (row?.result ? percentile([...row.result.latencies].sort((a, b) => a - b), 99) : undefined);
const rate = (row: EqualRow | undefined) => (row?.result && !row.error ? row.result.sent / row.result.seconds : undefined);

/** The equal-work table (every trial of both systems) and, per trial, smarthost against Postfix with issue 16's targets. */
function printEqual(rows: EqualRow[], measuredPostfix: boolean): void {
  console.log('\nEqual work: both systems deliver everything they accept to the fake Exchange Online (limits off, the agent\'s rate limit off); a row ends when the fake has it all and the queue is empty\n');
  const head = ['scenario', 'trial', 'system', 'msgs', 'intake msg/s', 'end-to-end s', 'p50 ms', 'p95 ms', 'p99 ms', 'CPU ms/msg', 'peak RSS MiB', 'peak PSS MiB', 'procs', 'throttled'];
  console.log(formatTable(head, rows.map((r) => [r.scenario.name, `${r.trial + 1}${r.first ? ' (1st)' : ''}`, r.system, ...equalCells(r)])));
  if (!measuredPostfix) return;
  console.log('\nEqual work, every trial: smarthost / Postfix (intake: higher is better; end to end: × faster; p99, memory: lower is better) and issue 16\'s targets\n');
  const ratios: string[][] = [];
  for (const scenario of equal) {
    const ours = rows.filter((r) => r.scenario === scenario && r.system === 'smarthost');
    for (const row of ours) {
      const theirs = rows.find((r) => r.scenario === scenario && r.system === 'Postfix' && r.trial === row.trial);
      const intake = (rate(row) ?? NaN) / (rate(theirs) ?? NaN);
      const faster = (theirs?.endToEndSeconds ?? NaN) / (row.endToEndSeconds ?? NaN);
      const latency = (p99(row) ?? NaN) / (p99(theirs) ?? NaN);
      const targets: string[] = [];
      const check = (name: string, value: number, ok: (v: number) => boolean) => Number.isFinite(value) && targets.push(`${name} ${ok(value) ? 'met' : 'MISSED'}`);
      if (scenario.cap !== undefined) check('intake ≥ 2×', intake, (v) => v >= 2);
      else check('≥ 2× faster', faster, (v) => v >= 2);
      check('p99 ≤ 0.5×', latency, (v) => v <= 0.5);
      if (scenario.connections === 10 && row.mem) check(`agent ≤ 80 MiB at ${mib(scenario.size)}`, row.mem.peakRssMiB, (v) => v <= 80);
      ratios.push([scenario.name, `${row.trial + 1} (${row.first ? 'smarthost' : 'Postfix'} 1st)`, ...trialRatios(row, theirs, (r) => r.mem?.peakPssMiB), targets.join(', ') || '-']);
    }
  }
  console.log(formatTable(['scenario', 'trial', 'intake msg/s', 'end to end', 'p99', 'CPU/msg', 'peak PSS', 'targets'], ratios));
}

/**
 * Issue 12: the console rows, every trial, and per trial the scraped agent against the one with
 * the console off. The noise is the spread of the console-off trials themselves.
 */
function printConsole(rows: EqualRow[], cost: ScrapeCost | undefined): void {
  console.log(`\nConsole rows: equal work by the agent alone, the status listener off, and on with ${SCRAPED_PATHS.join(', ')} each fetched once a second during the measured part\n`);
  const head = ['scenario', 'trial', 'system', 'msgs', 'intake msg/s', 'end-to-end s', 'p50 ms', 'p95 ms', 'p99 ms', 'CPU ms/msg', 'peak RSS MiB', 'peak PSS MiB', 'procs', 'throttled', 'scrapes ok/failed', 'scrape p99 ms', 'largest page'];
  console.log(
    formatTable(
      head,
      rows.map((r) => {
        const scrape = r.scrape ? [`${r.scrape.ok}/${r.scrape.failed}`, fixed(r.scrape.p99Ms, 1), `${(Math.max(0, ...Object.values(r.scrape.largestBytes)) / KiB).toFixed(0)} KiB`] : r.error ? [] : ['-', '-', '-'];
        return [r.scenario.name, `${r.trial + 1}${r.first ? ' (1st)' : ''}`, r.system, ...equalCells(r), ...scrape];
      }),
    ),
  );
  console.log('\nConsole scraped / console off, every trial (intake: higher is better; end to end: × faster; p99, CPU, memory: lower is better); noise: the console-off trials\' own spread\n');
  const table: string[][] = [];
  for (const scenario of consoleRows) {
    const off = rows.filter((r) => r.scenario === scenario && r.system === 'smarthost');
    const offRates = off.map(rate).filter((v): v is number => v !== undefined);
    const noise = offRates.length > 1 ? `${((Math.max(...offRates) / Math.min(...offRates) - 1) * 100).toFixed(0)} %` : '- (one trial)';
    for (const row of rows.filter((r) => r.scenario === scenario && r.system === SCRAPED)) {
      const base = off.find((r) => r.trial === row.trial);
      table.push([scenario.name, `${row.trial + 1} (${row.first ? 'scraped' : 'off'} 1st)`, ...trialRatios(row, base, (r) => r.mem?.peakRssMiB), noise]);
    }
  }
  console.log(formatTable(['scenario', 'trial', 'intake msg/s', 'end to end', 'p99', 'CPU/msg', 'peak RSS', 'intake spread of console-off trials'], table));
  if (!cost) return;
  if ('error' in cost) {
    console.log(`\nCPU per scrape round: error: ${cost.error.split('\n')[0]}`);
    return;
  }
  const offCpu = rows.filter((r) => r.system === 'smarthost' && r.mem && r.result && r.scenario.size === KiB).map((r) => (r.mem!.cpuSeconds * 1000) / r.result!.sent);
  const perMessage = offCpu.length ? Math.min(...offCpu) : NaN;
  console.log(
    `\nCPU per scrape round (${SCRAPED_PATHS.join(', ')}, once each), agent idle, over ${SCRAPE_COST_ROUNDS} rounds: ${fixed(cost.cpuMsPerRound, 2)} ms ` +
      `(its idle use, ${fixed(cost.idleCpuMsPerSecond, 2)} ms a second, taken out): at one round a second ${fixed(cost.cpuMsPerRound / 10, 3)} % of one core, ` +
      `the CPU of ${fixed(cost.cpuMsPerRound / perMessage, 2)} 1 KiB message(s) accepted and delivered (${fixed(perMessage, 2)} ms each, the console-off rows' lowest).`,
  );
}

/**
 * The agent's CPU time per scrape round (every SCRAPED_PATHS once), its own idle use over the same
 * time taken out: a cost in CPU time that load on the machine cannot halve or double the way it does
 * the msg/s of two trials.
 */
type ScrapeCost = { cpuMsPerRound: number; idleCpuMsPerSecond: number } | { error: string };

async function measureScrapeCost(upstream: FakeUpstream): Promise<ScrapeCost> {
  return onFreshInstance<ScrapeCost>(agentSystem(upstream, true), 'delivery', upstream, async (sut) => {
    const port = sut.statusPort!;
    for (let i = 0; i < 20; i++) await scrapeOnce(port); // compiled, connections and caches warm
    const idle = await TreeSampler.start(sut.root, 1000);
    idle.mark();
    const idleStarted = Date.now();
    await new Promise((resolve) => setTimeout(resolve, IDLE_CPU_SECONDS * 1000));
    const idleCpu = (await idle.stop()).cpuSeconds / ((Date.now() - idleStarted) / 1000);
    const busy = await TreeSampler.start(sut.root, 1000);
    busy.mark();
    const started = Date.now();
    for (let i = 0; i < SCRAPE_COST_ROUNDS; i++) await scrapeOnce(port);
    const seconds = (Date.now() - started) / 1000;
    const cpu = (await busy.stop()).cpuSeconds - idleCpu * seconds;
    return { cpuMsPerRound: (cpu * 1000) / SCRAPE_COST_ROUNDS, idleCpuMsPerSecond: idleCpu * 1000 };
  }, (error) => ({ error }));
}

/** The drain rows and whether each met its rate (within 10 %) with no throttling reply and no duplicate. */
function printDrain(rows: DrainRow[]): void {
  console.log(
    `\nDrain (smarthost only): Exchange Online's limits on in the agent (upstream.rateLimit defaults) and in the fakes; ` +
      `the rate is what the fake took in the first ${DRAIN_MEASURED_MINUTES} minutes after the first delivery, with more mail queued than those minutes let out\n`,
  );
  const head = ['scenario', 'msgs', 'expected msg/min', 'measured msg/min', 'throttling replies', 'duplicates', 'drained in s', 'per mailbox', 'verdict'];
  console.log(
    formatTable(
      head,
      rows.map((r) => {
        if (r.error) return [r.scenario.name, String(r.messages), String(r.scenario.expectedPerMinute), `error: ${r.error.split('\n')[0]}`];
        const rateOk = r.perMinute !== undefined && Math.abs(r.perMinute - r.scenario.expectedPerMinute) <= 0.1 * r.scenario.expectedPerMinute;
        const verdict = rateOk && r.throttled === 0 && r.duplicates === 0 ? 'met' : 'MISSED';
        return [r.scenario.name, String(r.messages), String(r.scenario.expectedPerMinute), fixed(r.perMinute, 1), String(r.throttled), String(r.duplicates), fixed(r.drainedSeconds, 1), (r.perMailbox ?? []).join(' / '), verdict];
      }),
    ),
  );
  for (const r of rows) if (r.throttleReplies?.length) console.log(`${r.scenario.name}: ${r.throttleReplies.join('; ')}`);
}

async function main(): Promise<void> {
  const started = Date.now();
  const loadAtStart = loadavg()[0]!;
  // Measure what `npm start` runs: the bundle, not the sources under tsx.
  execFileSync('npm', ['run', '--silent', 'build'], { stdio: 'inherit', cwd: fileURLToPath(new URL('..', import.meta.url)) });

  const tools = options.postfix ? findPostfix() : { missing: 'skipped (--no-postfix)' };
  const measuredPostfix = !('missing' in tools);
  console.log(
    `smarthost benchmark, ${new Date().toISOString()}, ${cpus().length} CPU(s) (${cpus()[0]?.model ?? '?'}), Node ${process.version}` +
      `${quick ? ', --quick' : ''}${options.repeat > 1 ? `, best of ${options.repeat} trials` : ''}${options.only ? `, only '${options.only}'` : ''}`,
  );
  console.log(measuredPostfix ? `Postfix ${tools.version}: own instance, relayhost with TLS and SASL to the same fake.` : `Postfix: ${tools.missing}; ratios use the reference figures from issue 5.`);
  if (measuredPostfix && tools.warning) console.log(`WARNING: ${tools.warning}.`);
  console.log(`load average (1 min) before the run: ${loadAtStart.toFixed(2)}`);
  if (loadAtStart > 0.5) console.log(`WARNING: the machine is busy (load ${loadAtStart.toFixed(2)} on ${cpus().length} CPUs): figures will be low and noisy.`);

  const drainRows: DrainRow[] = [];
  const drainScenarios = DRAIN_SCENARIOS.filter((s) => drainSelected(s.name));
  if (drainScenarios.length) {
    for (const scenario of drainScenarios) {
      process.stderr.write(`  smarthost: ${scenario.name} …`);
      const row = await measureDrain(scenario, (text) => process.stderr.write(` ${text}`));
      process.stderr.write(row.error ? ` error: ${row.error.split('\n')[0]}\n` : ` ${fixed(row.perMinute, 1)} msg/min\n`);
      drainRows.push(row);
    }
  }

  const upstream = await startFakeUpstream();
  const trials = new Map<string, IntakeRow[]>();
  const equalRows: EqualRow[] = [];
  const consoleResults: EqualRow[] = [];
  let scrapeCost: ScrapeCost | undefined;
  const big: BigRow[] = [];
  const systems: System[] = [agentSystem(upstream)];
  if (measuredPostfix) systems.push(postfixSystem(tools, upstream));
  try {
    let turn = 0;
    /** Every trial of each scenario on each system, the systems taking turns going first (so neither always runs on a disk the other just used). */
    const equalTrials = async (scenarios: EqualScenario[], on: System[], into: EqualRow[]) => {
      for (const scenario of scenarios.filter((s) => selected(s.name))) {
        for (let trial = 0; trial < options.repeat; trial++) {
          const order = turn++ % 2 === 0 ? on : [...on].reverse();
          for (const system of order) {
            process.stderr.write(`  ${system.name}: ${scenario.name} (trial ${trial + 1}) …`);
            const row = await measureEqual(system, scenario, upstream, trial, system === order[0]);
            process.stderr.write(row.error ? ` error: ${row.error.split('\n')[0]}\n` : ` ${fixed(row.result!.sent / row.result!.seconds, 1)} msg/s, all delivered in ${fixed(row.endToEndSeconds, 2)} s${row.scrape ? `, ${row.scrape.ok} scrapes` : ''}\n`);
            into.push(row);
          }
        }
      }
    };
    await equalTrials(equal, systems, equalRows);
    await equalTrials(consoleRows, [agentSystem(upstream), agentSystem(upstream, true)], consoleResults);
    if (consoleRows.some((s) => selected(s.name))) {
      process.stderr.write(`  ${SCRAPED}: CPU per scrape round …`);
      scrapeCost = await measureScrapeCost(upstream);
      process.stderr.write('error' in scrapeCost ? ` error: ${scrapeCost.error.split('\n')[0]}\n` : ` ${fixed(scrapeCost.cpuMsPerRound, 2)} ms\n`);
    }
    for (const scenario of [...matrix, ...extra].filter((s) => selected(s.name))) {
      for (let trial = 0; trial < options.repeat; trial++) {
        // Alternate which system goes first, so neither always runs on a disk the other just used.
        for (const system of turn++ % 2 === 0 ? systems : [...systems].reverse()) {
          process.stderr.write(`  ${system.name}: ${scenario.name}${options.repeat > 1 ? ` (trial ${trial + 1})` : ''} …`);
          const row = await measureIntake(system, scenario, upstream);
          process.stderr.write(row.error ? ` error\n` : ` ${fixed(row.result!.sent / row.result!.seconds, 1)} msg/s\n`);
          const key = `${system.name}|${scenario.name}`;
          trials.set(key, [...(trials.get(key) ?? []), row]);
        }
      }
    }
    if (selected('ten 30 MiB at once')) {
      for (const system of systems) {
        process.stderr.write(`  ${system.name}: ten 30 MiB at once …`);
        const row = await measureBig(system, upstream);
        process.stderr.write(row.error ? ' error\n' : ` ${fixed(row.intakeMem?.peakRssMiB, 0)} MiB peak RSS\n`);
        big.push(row);
      }
    }
  } finally {
    await upstream.close();
  }

  const find = (system: SystemName, scenario: Scenario) => best(trials.get(`${system}|${scenario.name}`) ?? []);
  const spread = (system: SystemName, scenario: Scenario) => {
    const rates = (trials.get(`${system}|${scenario.name}`) ?? []).filter((t) => t.result).map((t) => t.result!.sent / t.result!.seconds);
    return rates.length > 1 ? `${Math.min(...rates).toFixed(0)}–${Math.max(...rates).toFixed(0)}` : '-';
  };

  if (equalRows.length) printEqual(equalRows, measuredPostfix);
  if (consoleResults.length) printConsole(consoleResults, scrapeCost);
  if (drainRows.length) printDrain(drainRows);

  if (trials.size > 0) {
  console.log(
    `\nOffice rows (unequal work): the smarthost ${agentOutbox ? 'writes to its outbox' : options.unlimited ? 'delivers as fast as it can' : "delivers at Exchange Online's 30 messages a minute"}, Postfix relays everything at its own pace; fsync before every 250, memory of the whole process tree\n`,
  );
  const head = ['scenario', 'system', 'msgs', 'msg/s', 'MiB/s', 'p50 ms', 'p95 ms', 'p99 ms', 'idle RSS MiB', 'peak RSS MiB', 'peak PSS MiB', 'procs', 'CPU ms/msg', 'delivered'];
  if (options.repeat > 1) head.push('msg/s trials');
  const table: string[][] = [];
  for (const scenario of [...matrix, ...extra]) {
    for (const system of ['smarthost', 'Postfix'] as const) {
      const row = find(system, scenario);
      if (!row) continue;
      const cells = row.error ? [`error: ${row.error.split('\n')[0]}`] : [...intakeCells(row), String(row.delivered ?? '-')];
      if (options.repeat > 1 && !row.error) cells.push(spread(system, scenario));
      table.push([scenario.name, system, ...cells]);
    }
  }
  console.log(formatTable(head, table));

  console.log(`\nsmarthost / Postfix (${measuredPostfix ? 'measured here' : 'issue 5 reference figures'}): msg/s, MiB/s higher is better; p99, PSS lower is better\n`);
  const ratioRows: string[][] = [];
  for (const scenario of matrix) {
    if (!trials.has(`smarthost|${scenario.name}`)) continue;
    const ours = figures(find('smarthost', scenario));
    let theirs: Partial<Figures> | undefined = figures(find('Postfix', scenario));
    if (!measuredPostfix && scenario.connections === 10) {
      if (scenario.size === KiB) theirs = { ...REFERENCE.kib1, mibPerSec: (REFERENCE.kib1.msgPerSec * KiB) / MiB, peakPssMiB: REFERENCE.pssMiB };
      if (scenario.size === 100 * KiB) theirs = { ...REFERENCE.kib100, mibPerSec: (REFERENCE.kib100.msgPerSec * 100 * KiB) / MiB, peakPssMiB: REFERENCE.pssMiB };
      if (scenario.size === 5 * MiB) theirs = { ...REFERENCE.mib5, msgPerSec: (REFERENCE.mib5.mibPerSec * MiB) / (5 * MiB), peakPssMiB: REFERENCE.pssMiB };
    }
    ratioRows.push([scenario.name, ratio(ours?.msgPerSec, theirs?.msgPerSec), ratio(ours?.mibPerSec, theirs?.mibPerSec), ratio(ours?.p99, theirs?.p99), ratio(ours?.peakPssMiB, theirs?.peakPssMiB)]);
  }
  console.log(formatTable(['scenario', 'msg/s', 'MiB/s', 'p99', 'peak PSS'], ratioRows));
  }

  if (big.length) {
    console.log('\nTen 30 MiB messages arriving at once (10 connections), memory while they arrive and until all ten reached the fake\n');
    console.log(
      formatTable(
        ['system', 'intake s', 'MiB/s', 'p50 ms', 'p99 ms', 'peak RSS MiB', 'peak PSS MiB', 'delivered s', 'peak RSS incl. delivery', 'peak PSS incl. delivery'],
        big.map((r) => {
          if (!r.result || !r.intakeMem) return [r.system, `error: ${(r.error ?? '').split('\n')[0]}`];
          const sorted = [...r.result.latencies].sort((a, b) => a - b);
          return [
            r.system,
            fixed(r.result.seconds, 2),
            fixed((r.result.sent * BIG.size) / MiB / r.result.seconds, 1),
            fixed(percentile(sorted, 50), 1),
            fixed(percentile(sorted, 99), 1),
            fixed(r.intakeMem.peakRssMiB, 0),
            fixed(r.intakeMem.peakPssMiB, 0),
            r.error ? `error: ${r.error}` : fixed(r.deliveredSeconds, 1),
            fixed(r.deliveryMem?.peakRssMiB, 0),
            fixed(r.deliveryMem?.peakPssMiB, 0),
          ];
        }),
      ),
    );
  }

  // Targets of issue 5: against Postfix measured in this run (when there is one) and against the
  // Postfix figures the issue gives.
  const at10 = (size: number) => matrix.find((s) => s.size === size && s.connections === 10)!;
  const ours = (size: number) => figures(find('smarthost', at10(size)));
  type Theirs = (size: number) => Partial<Figures> | undefined;
  const reference: Theirs = (size) => (size === KiB ? REFERENCE.kib1 : size === 100 * KiB ? REFERENCE.kib100 : REFERENCE.mib5);
  const inRun: Theirs | undefined = measuredPostfix ? (size) => figures(find('Postfix', at10(size))) : undefined;
  const verdict = (ok: boolean | undefined) => (ok === undefined ? 'n/a' : ok ? 'met' : 'MISSED');
  const cmp = (a: number | undefined, b: number | undefined, test: (a: number, b: number) => boolean) => (a === undefined || b === undefined || !Number.isFinite(a) || !Number.isFinite(b) ? undefined : test(a, b));
  const versus = (theirs: Theirs): [string, string][] => [
    [`${fixed(ours(KiB)?.msgPerSec, 1)} vs ${fixed(theirs(KiB)?.msgPerSec, 1)} (${ratio(ours(KiB)?.msgPerSec, theirs(KiB)?.msgPerSec)})`, verdict(cmp(ours(KiB)?.msgPerSec, theirs(KiB)?.msgPerSec, (a, b) => a >= 2 * b))],
    [`${fixed(ours(KiB)?.p99, 1)} vs ${fixed(theirs(KiB)?.p99, 1)} ms`, verdict(cmp(ours(KiB)?.p99, theirs(KiB)?.p99, (a, b) => a <= b))],
    [`${fixed(ours(100 * KiB)?.msgPerSec, 1)} vs ${fixed(theirs(100 * KiB)?.msgPerSec, 1)} (${ratio(ours(100 * KiB)?.msgPerSec, theirs(100 * KiB)?.msgPerSec)})`, verdict(cmp(ours(100 * KiB)?.msgPerSec, theirs(100 * KiB)?.msgPerSec, (a, b) => a >= 2 * b))],
    [`${fixed(ours(100 * KiB)?.p99, 1)} vs ${fixed(theirs(100 * KiB)?.p99, 1)} ms`, verdict(cmp(ours(100 * KiB)?.p99, theirs(100 * KiB)?.p99, (a, b) => a <= b))],
    [`${fixed(ours(5 * MiB)?.mibPerSec, 1)} vs ${fixed(theirs(5 * MiB)?.mibPerSec, 1)} (${ratio(ours(5 * MiB)?.mibPerSec, theirs(5 * MiB)?.mibPerSec)})`, verdict(cmp(ours(5 * MiB)?.mibPerSec, theirs(5 * MiB)?.mibPerSec, (a, b) => a >= b))],
  ];
  const comparisons = ['1 KiB @10: msg/s ≥ 2× Postfix', '1 KiB @10: p99 ≤ Postfix', '100 KiB @10: msg/s ≥ 2× Postfix', '100 KiB @10: p99 ≤ Postfix', '5 MiB @10: MiB/s ≥ Postfix'];
  const referenceColumns = versus(reference);
  const inRunColumns = inRun ? versus(inRun) : undefined;
  const targets: string[][] = comparisons.map((name, i) => [name, ...(inRunColumns ? inRunColumns[i]! : []), ...referenceColumns[i]!]);
  // Measured against fixed numbers: the same in both column pairs.
  const absolute = (name: string, text: string, ok: boolean | undefined) => targets.push([name, text, verdict(ok), ...(inRunColumns ? [text, verdict(ok)] : [])]);
  for (const size of [KiB, 100 * KiB, 5 * MiB]) {
    const rss = figures(find('smarthost', at10(size)))?.peakRssMiB;
    absolute(`agent peak RSS @10 conn, ${size >= MiB ? `${size / MiB} MiB` : `${size / KiB} KiB`} ≤ 80 MiB`, `${fixed(rss, 0)} MiB`, cmp(rss, 80, (a, b) => a <= b));
  }
  const bigOurs = big.find((r) => r.system === 'smarthost')?.intakeMem?.peakRssMiB;
  absolute('agent peak RSS, ten 30 MiB at once ≤ 150 MiB', `${fixed(bigOurs, 0)} MiB`, cmp(bigOurs, 150, (a, b) => a <= b));
  if (trials.size > 0 || big.length > 0) {
  console.log('\nTargets of issue 5, office rows (MB read as MiB)\n');
  console.log(
    formatTable(
      ['target', ...(inRunColumns ? ['vs Postfix measured here', 'verdict'] : []), "vs issue 5's Postfix figures", 'verdict'],
      targets,
    ),
  );
  }

  const errors = [...drainRows.filter((r) => r.error).map((r) => `smarthost ${r.scenario.name}: ${r.error}`), ...[...trials.values()].flat().filter((r) => r.error).map((r) => `${r.system} ${r.scenario.name}: ${r.error}`), ...[...equalRows, ...consoleResults].filter((r) => r.error).map((r) => `${r.system} ${r.scenario.name} (trial ${r.trial + 1}): ${r.error}`), ...big.filter((r) => r.error).map((r) => `${r.system} ten 30 MiB: ${r.error}`)];
  if (errors.length) console.log(`\nErrors:\n${errors.map((e) => `  ${e}`).join('\n')}`);

  const loadRows = equalRows.length > 0 || trials.size > 0 || big.length > 0;
  console.log(
    [
      '',
      ...(loadRows ? [] : ['drain: 1 KiB messages sent on 3 connections, all queued before the rate is measured; a fresh agent per row; the fakes run in this process.']),
    ].join('\n'),
  );
  if (loadRows) console.log(
    [
      `latency: from the last byte of DATA handed to the kernel to the 250 (raw-socket client, one message at a time per connection; nodemailer rows have none).`,
      `each row: a fresh instance, ${warmUp} s of 1 KiB messages on every connection (not counted: processes forked, code compiled), then at most ${cap} s of sending (equal-work 'all of' rows: all their messages).`,
      'equal work: after the warm-up, its messages are delivered and both queues are empty before the clock starts; the row ends when the fake has every measured message and the queue is empty; end-to-end: first measured send → last message captured; memory and CPU until then.',
      'peak RSS: VmHWM, summed over the processes of the instance (for Postfix an upper bound: shared pages count once per process); PSS: highest sampled sum of Pss (smaps_rollup), shared pages divided.',
      "the agent runs from a private copy of the node executable, so its PSS is not lowered by sharing node's pages with the benchmark's own node processes.",
      "CPU ms/msg: CPU time of the instance's processes (all threads, reaped children included) per message accepted, delivery included; office rows' delivered: messages that reached the fake upstream while the row was sent.",
      ...(options.repeat > 1 ? [`office rows: the trial with the highest msg/s of ${options.repeat} (msg/s trials: the range); equal-work rows: every trial.`] : []),
    ].join('\n'),
  );
  console.log(`load average (1 min) after the run: ${loadavg()[0]!.toFixed(2)}. Took ${((Date.now() - started) / 1000).toFixed(0)} s.`);
}

await main();
