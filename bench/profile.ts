/**
 * Where the agent's CPU goes during one intake row: `node --import tsx bench/profile.ts [size KiB]
 * [connections] [seconds] [perMinute] [--status | --scrape]` (defaults 1, 10, 8, 30). Starts the bundled agent under V8's
 * sampling profiler (delivering at 30 a minute to the fake upstream, as in the office rows; a large
 * perMinute profiles the equal-work rows, delivery included),
 * sends the load, stops the agent and prints the functions with the most self time, plus totals
 * per package. With --status (the status listener on) or --scrape (and scraped as in the console
 * rows) it also prints the main-thread time spent in the listener's code per message: what the
 * console costs the agent itself, which a busy machine does not scatter the way it scatters msg/s.
 * The .cpuprofile stays in the printed folder for Chrome DevTools.
 */
import { mkdtemp, readdir, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startAgent } from './lib/agent.ts';
import { scrapeConsole, type ConsoleScraper } from './lib/consoleScraper.ts';
import { cpuTimes } from './lib/procMemory.ts';
import { KiB, runRaw } from './lib/smtpLoad.ts';
import { fixed, formatTable } from './lib/table.ts';
import { startFakeUpstream } from './lib/upstream.ts';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

/** Script URLs of the status listener's code: its lazily loaded chunk (prom-client in it) and node's HTTP server. */
const STATUS_CODE = [/\/startStatus-[^/]*\.mjs$/, /^node:_http_server$/];

const args = process.argv.slice(2);
// --status: with the status listener on (console, /metrics); --scrape: and scraped once a second
// during the measured part, as in the console rows: to see what either costs per message.
const scrape = args.includes('--scrape');
const status = scrape || args.includes('--status');
const [sizeKiB = 1, connections = 10, seconds = 8, perMinute = 30] = args.filter((arg) => !arg.startsWith('--')).map(Number);
const profileDir = await mkdtemp(join(tmpdir(), 'smarthost-profile-'));
const upstream = await startFakeUpstream();
try {
  const agent = await startAgent({
    upstream: { ...upstream.upstream, rateLimit: { perMinute, connections: 3, recipientsPerDay: 1_000_000_000, perRecipientPerHour: 1_000_000_000 } },
    nodeArgs: ['--cpu-prof', `--cpu-prof-dir=${profileDir}`],
    status,
  });
  const before = await cpuTimes(agent.pid);
  const clientBefore = process.cpuUsage();
  let scraper: ConsoleScraper | undefined;
  const result = await runRaw(agent.port, {
    connections,
    messages: 1_000_000,
    size: sizeKiB * KiB,
    warmUpSeconds: 2,
    maxSeconds: seconds,
    onStart: () => {
      if (scrape) scraper = scrapeConsole(agent.statusPort!);
    },
  });
  const scrapes = await scraper?.stop();
  if (scrapes) console.log(`scrapes: ${scrapes.ok} answered, ${scrapes.failed} failed, p99 ${fixed(scrapes.p99Ms, 1)} ms`);
  const client = process.cpuUsage(clientBefore);
  const after = await cpuTimes(agent.pid);
  const kernel = after.system - before.system;
  const cpu = after.user - before.user + kernel;
  const kernelShare = kernel / cpu;
  await agent.stop();
  console.log(
    `${result.sent} messages of ${sizeKiB} KiB on ${connections} connections in ${fixed(result.seconds, 2)} s: ` +
      `${fixed(result.sent / result.seconds, 1)} msg/s, agent CPU ${fixed((cpu * 1000) / result.sent, 3)} ms per message (${fixed(100 * kernelShare, 0)} % in the kernel); ` +
      `load generator ${fixed((client.user + client.system) / 1000 / result.sent, 3)} ms per message (warm-up included)`,
  );
  const file = (await readdir(profileDir)).find((name) => name.endsWith('.cpuprofile'));
  if (!file) throw new Error(`no profile written in ${profileDir}`);
  const profile = JSON.parse(await readFile(join(profileDir, file), 'utf8')) as CpuProfile;
  summarize(profile);
  if (status) {
    const micros = microsUnder(profile, STATUS_CODE);
    console.log(`\nstatus listener (its chunk and node's HTTP server, callees included): ${fixed(micros / 1000, 1)} ms of the main thread, ${fixed(micros / (result.sent + result.warmUpSent), 1)} µs per message (warm-up included)`);
  }
  console.log(`\nprofile: ${join(profileDir, file)}`);
} finally {
  await upstream.close();
}

/** Sampled time of every frame that has a frame of `urls` on its stack (the time spent in or under that code). */
function microsUnder(profile: CpuProfile, urls: RegExp[]): number {
  const parentOf = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parentOf.set(child, node.id);
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const under = new Map<number, boolean>();
  const isUnder = (id: number | undefined): boolean => {
    if (id === undefined) return false;
    const known = under.get(id);
    if (known !== undefined) return known;
    const answer = urls.some((url) => url.test(byId.get(id)!.callFrame.url)) || isUnder(parentOf.get(id));
    under.set(id, answer);
    return answer;
  };
  return profile.samples.reduce((sum, id, i) => sum + (isUnder(id) ? (profile.timeDeltas[i] ?? 0) : 0), 0);
}

function summarize(profile: CpuProfile): void {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const selfMicros = new Map<number, number>();
  profile.samples.forEach((id, i) => selfMicros.set(id, (selfMicros.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)));
  const total = [...selfMicros.values()].reduce((a, b) => a + b, 0);
  const perFunction = new Map<string, number>();
  const perPackage = new Map<string, number>();
  for (const [id, micros] of selfMicros) {
    const frame = byId.get(id)!.callFrame;
    const where = frame.url ? `${frame.url.replace(/^.*\/(node_modules|dist)\//, '')}:${frame.lineNumber + 1}` : '';
    const name = `${frame.functionName || '(anonymous)'} ${where}`.trim();
    perFunction.set(name, (perFunction.get(name) ?? 0) + micros);
    const pkg = frame.url.startsWith('node:') ? 'node core' : frame.url ? 'smarthost bundle' : frame.functionName.startsWith('(') ? frame.functionName : 'native';
    perPackage.set(pkg, (perPackage.get(pkg) ?? 0) + micros);
  }
  const top = (map: Map<string, number>, n: number) =>
    [...map].sort((a, b) => b[1] - a[1]).slice(0, n).map(([name, micros]) => [name.slice(0, 110), fixed((100 * micros) / total, 1)]);
  console.log(formatTable(['where', '% self'], top(perPackage, 10)));
  console.log(formatTable(['function', '% self'], top(perFunction, 40)));
}
