/**
 * Benchmark: starts `smarthost start` as its own process, the bundled build that `npm start` runs
 * (fsync before every 250), delivering to a fake Exchange Online with its limits off, and
 * measures, per scenario, messages/s accepted, MiB/s, the time from the end of DATA to the 250
 * (p50/p95/p99), peak RSS and proportional set size (PSS). When Postfix is installed (and we are
 * root), the same scenarios run against a Postfix instance of its own relaying to the same fake
 * with TLS and SASL, and the table gets our/Postfix ratios. Then: end-to-end time for 1,000 ×
 * 10 KiB to the fake, and the peak memory while ten 30 MiB messages arrive at once.
 *
 *   npm run bench -- [--quick] [--no-postfix] [--outbox | --unlimited] [--repeat N] [--only TEXT]
 *
 *   --quick       fewer messages and shorter caps: a pass in about two minutes
 *   --no-postfix  measure the agent only
 *   --outbox      the agent writes to its outbox (no upstream) during the intake scenarios
 *   --unlimited   during the intake scenarios the agent delivers as fast as it can (default: at
 *                 Exchange Online's 30 messages a minute, its production setting)
 *   --repeat N    run every intake row N times (the systems taking turns) and print the best trial
 *   --only TEXT   only the rows whose name contains TEXT ('10 conn', '5 MiB', 'end to end', '30 MiB at once')
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
import { abortPostfixNow, findPostfix, startPostfix, type PostfixTools } from './lib/postfix.ts';
import { TreeSampler, type MemoryReport } from './lib/procMemory.ts';
import { KiB, MiB, percentile, runNodemailer, runRaw, type LoadResult } from './lib/smtpLoad.ts';
import { fixed, formatTable, ratio } from './lib/table.ts';
import { startFakeUpstream, type FakeUpstream } from './lib/upstream.ts';

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

/** Postfix measured by an earlier session on a 2-core machine (issue 5); used when Postfix is absent. */
const REFERENCE = {
  kib1: { msgPerSec: 317, p99: 67 },
  kib100: { msgPerSec: 221, p99: 115 },
  mib5: { mibPerSec: 116 },
  pssMiB: 95,
};

type SystemName = 'smarthost' | 'Postfix';

interface SystemUnderTest {
  port: number;
  /** The process whose tree is measured. */
  root(): number | undefined;
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
  CONNECTIONS.map((connections, i) => ({ name: `${label}, ${connections} conn`, size, connections, messages: n(messages[i]!), client: 'raw' as const })),
);
/** Rows the first version of this benchmark printed, kept for comparison with earlier runs. */
const extra: Scenario[] = [
  { name: '1 KiB, 10 conn (nodemailer)', size: KiB, connections: 10, messages: n(5000), client: 'nodemailer' },
  { name: '30 MiB, 1 conn', size: 30 * MiB, connections: 1, messages: quick ? 1 : 3, client: 'raw' },
];
const E2E = { messages: quick ? 200 : 1000, size: 10 * KiB, connections: 10 };
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

function agentSystem(upstream: FakeUpstream): System {
  return {
    name: 'smarthost',
    async start(purpose) {
      const deliver = purpose === 'delivery' || !agentOutbox;
      // Delivery runs: limits off, the agent sends as fast as it can on its 3 connections (the fake
      // has no limits either). Intake rows: Exchange Online's limits, as an office agent is set up,
      // unless --unlimited; the fake upstream's TLS work at full speed takes CPU from intake.
      const perMinute = purpose === 'delivery' || options.unlimited ? 1_000_000 : 30;
      const agent = await startAgent(deliver ? { upstream: { ...upstream.upstream, rateLimit: { perMinute, connections: 3 } } } : {});
      return { port: agent.port, root: () => agent.pid, diagnostics: () => agent.lastLines(5).join('\n'), stop: () => agent.stop() };
    },
  };
}

function postfixSystem(tools: PostfixTools, upstream: FakeUpstream): System {
  return {
    name: 'Postfix',
    async start() {
      const instance = await startPostfix(tools, { port: upstream.port, user: upstream.basicUser, password: upstream.basicPassword, caPem });
      return { port: instance.port, root: () => instance.masterPid(), diagnostics: () => instance.maillogTail(5), stop: () => instance.stop() };
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

interface EndToEndRow {
  system: SystemName;
  intakeSeconds?: number;
  endToEndSeconds?: number;
  delivered?: number;
  throttled?: number;
  upstreamErrors?: number;
  maxUpstreamSessions?: number;
  mem?: MemoryReport;
  error?: string;
}

function measureEndToEnd(system: System, upstream: FakeUpstream): Promise<EndToEndRow> {
  return onFreshInstance<EndToEndRow>(system, 'delivery', upstream, async (sut) => {
    const sampler = await TreeSampler.start(sut.root);
    let firstSend = 0;
    const { load, got } = await (async () => {
      const load = await runRaw(sut.port, { ...E2E, onStart: () => (firstSend = Date.now()) });
      const got = await upstream.waitFor(E2E.messages, quick ? 60_000 : 240_000);
      return { load, got };
    })().finally(() => sampler.stop());
    const mem = await sampler.stop();
    const row: EndToEndRow = {
      system: system.name,
      intakeSeconds: load.seconds,
      delivered: got.count,
      throttled: got.throttled,
      upstreamErrors: got.errorCount,
      maxUpstreamSessions: got.maxConcurrentSessions,
      mem,
    };
    if (got.error) row.error = `${got.error}; last upstream errors: ${JSON.stringify(got.errorReplies)}`;
    else row.endToEndSeconds = (got.lastAt - firstSend) / 1000;
    return row;
  }, (error) => ({ system: system.name, error }));
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
      const result = await runRaw(sut.port, { connections: BIG.messages, messages: BIG.messages, size: BIG.size, onStart: () => (started = Date.now()) }).finally(() =>
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

  const upstream = await startFakeUpstream();
  const trials = new Map<string, IntakeRow[]>();
  const e2e: EndToEndRow[] = [];
  const big: BigRow[] = [];
  const systems: System[] = [agentSystem(upstream)];
  if (measuredPostfix) systems.push(postfixSystem(tools, upstream));
  try {
    let turn = 0;
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
    if (selected(`${E2E.messages} × 10 KiB end to end`)) {
      for (const system of systems) {
        process.stderr.write(`  ${system.name}: ${E2E.messages} × 10 KiB end to end …`);
        const row = await measureEndToEnd(system, upstream);
        process.stderr.write(row.error ? ' error\n' : ` ${fixed(row.endToEndSeconds, 1)} s\n`);
        e2e.push(row);
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

  console.log('\nIntake: messages accepted (fsync before every 250), end of DATA → 250, memory of the whole process tree\n');
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

  if (e2e.length) {
    console.log(`\nEnd to end: ${E2E.messages} × 10 KiB on ${E2E.connections} connections to the fake Exchange Online (limits off), first send → last message captured\n`);
    console.log(
      formatTable(
        ['system', 'intake s', 'end-to-end s', 'delivered msg/s', 'delivered', 'throttled', 'upstream errors', 'upstream sessions', 'peak RSS MiB', 'peak PSS MiB'],
        e2e.map((r) =>
          r.error && r.endToEndSeconds === undefined && r.delivered === undefined
            ? [r.system, `error: ${r.error.split('\n')[0]}`]
            : [
                r.system,
                fixed(r.intakeSeconds, 2),
                r.error ? `error: ${r.error}` : fixed(r.endToEndSeconds, 2),
                fixed(r.endToEndSeconds === undefined ? undefined : E2E.messages / r.endToEndSeconds, 1),
                String(r.delivered),
                String(r.throttled),
                String(r.upstreamErrors),
                String(r.maxUpstreamSessions),
                fixed(r.mem?.peakRssMiB, 0),
                fixed(r.mem?.peakPssMiB, 0),
              ],
        ),
      ),
    );
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
  const e2eOurs = e2e.find((r) => r.system === 'smarthost');
  if (e2eOurs) absolute('delivery: no throttling replies', `${String(e2eOurs.throttled ?? '-')} 432s (fake limits off)`, e2eOurs.throttled === undefined ? undefined : e2eOurs.throttled === 0);
  console.log('\nTargets (issue 5; MB read as MiB)\n');
  console.log(
    formatTable(
      ['target', ...(inRunColumns ? ['vs Postfix measured here', 'verdict'] : []), "vs issue 5's Postfix figures", 'verdict'],
      targets,
    ),
  );

  const errors = [...[...trials.values()].flat().filter((r) => r.error).map((r) => `${r.system} ${r.scenario.name}: ${r.error}`), ...e2e.filter((r) => r.error).map((r) => `${r.system} end to end: ${r.error}`), ...big.filter((r) => r.error).map((r) => `${r.system} ten 30 MiB: ${r.error}`)];
  if (errors.length) console.log(`\nErrors:\n${errors.map((e) => `  ${e}`).join('\n')}`);

  console.log(
    [
      '',
      `latency: from the last byte of DATA handed to the kernel to the 250 (raw-socket client, one message at a time per connection; nodemailer rows have none).`,
      `each row: a fresh instance, ${warmUp} s of 1 KiB messages on every connection (not counted: processes forked, code compiled), then at most ${cap} s of sending; the smarthost ${agentOutbox ? 'writes to its outbox' : options.unlimited ? 'delivers to the fake Exchange Online as fast as it can' : "delivers to the fake Exchange Online at Exchange Online's 30 messages a minute"} meanwhile, Postfix relays to it at its own pace.`,
      'peak RSS: VmHWM, summed over the processes of the instance (for Postfix an upper bound: shared pages count once per process); PSS: highest sampled sum of Pss (smaps_rollup), shared pages divided.',
      "the agent runs from a private copy of the node executable, so its PSS is not lowered by sharing node's pages with the benchmark's own node processes.",
      "CPU ms/msg: CPU time of the instance's processes per message accepted, delivery included; delivered: messages that reached the fake upstream while the row was sent.",
      `${options.repeat > 1 ? `each row is the trial with the highest msg/s of ${options.repeat} (msg/s trials: the range); ` : ''}load average (1 min) after the run: ${loadavg()[0]!.toFixed(2)}. Took ${((Date.now() - started) / 1000).toFixed(0)} s.`,
    ].join('\n'),
  );
}

await main();
