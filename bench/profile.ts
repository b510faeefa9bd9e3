/**
 * Where the agent's CPU goes during one intake row: `node --import tsx bench/profile.ts [size KiB]
 * [connections] [seconds] [perMinute]` (defaults 1, 10, 8, 30). Starts the bundled agent under V8's
 * sampling profiler (delivering at 30 a minute to the fake upstream, as in the office rows; a large
 * perMinute profiles the equal-work rows, delivery included),
 * sends the load, stops the agent and prints the functions with the most self time, plus totals
 * per package. The .cpuprofile stays in the printed folder for Chrome DevTools.
 */
import { mkdtemp, readdir, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startAgent } from './lib/agent.ts';
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

const [sizeKiB = 1, connections = 10, seconds = 8, perMinute = 30] = process.argv.slice(2).map(Number);
const profileDir = await mkdtemp(join(tmpdir(), 'smarthost-profile-'));
const upstream = await startFakeUpstream();
try {
  const agent = await startAgent({
    upstream: { ...upstream.upstream, rateLimit: { perMinute, connections: 3, recipientsPerDay: 1_000_000_000, perRecipientPerHour: 1_000_000_000 } },
    nodeArgs: ['--cpu-prof', `--cpu-prof-dir=${profileDir}`],
  });
  const before = await cpuTimes(agent.pid);
  const clientBefore = process.cpuUsage();
  const result = await runRaw(agent.port, { connections, messages: 1_000_000, size: sizeKiB * KiB, warmUpSeconds: 2, maxSeconds: seconds });
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
  summarize(JSON.parse(await readFile(join(profileDir, file), 'utf8')) as CpuProfile);
  console.log(`\nprofile: ${join(profileDir, file)}`);
} finally {
  await upstream.close();
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
