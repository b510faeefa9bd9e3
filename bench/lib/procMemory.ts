import { readdir, readFile } from 'node:fs/promises';

/**
 * Memory and CPU of a process tree from /proc: RSS and its peak (VmRSS, VmHWM in
 * /proc/PID/status), proportional set size (Pss in /proc/PID/smaps_rollup: each shared page
 * divided among the processes sharing it, so sums over many processes are fair) and CPU time.
 */

const TICKS_PER_SECOND = 100; // USER_HZ on Linux

export interface ProcessSample {
  pid: number;
  name: string;
  rssKiB: number;
  hwmKiB: number;
  pssKiB: number;
  /** utime + stime + cutime + cstime, seconds (children's time once they are reaped). */
  cpuSeconds: number;
}

async function readKiB(path: string, key: string): Promise<number | undefined> {
  const text = await readFile(path, 'utf8').catch(() => undefined);
  if (text === undefined) return undefined;
  const match = new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(text);
  return match ? Number(match[1]) : undefined;
}

/** One process, or undefined when it is gone. */
export async function sampleProcess(pid: number): Promise<ProcessSample | undefined> {
  const [status, stat, pss] = await Promise.all([
    readFile(`/proc/${pid}/status`, 'utf8').catch(() => undefined),
    readFile(`/proc/${pid}/stat`, 'utf8').catch(() => undefined),
    readKiB(`/proc/${pid}/smaps_rollup`, 'Pss'),
  ]);
  if (status === undefined || stat === undefined) return undefined;
  const kib = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? 0);
  const name = /^Name:\s+(.*)$/m.exec(status)?.[1] ?? '?';
  const fields = statFields(stat);
  const ticks = [11, 12, 13, 14].reduce((sum, i) => sum + Number(fields[i] ?? 0), 0);
  return { pid, name, rssKiB: kib('VmRSS'), hwmKiB: kib('VmHWM'), pssKiB: pss ?? 0, cpuSeconds: ticks / TICKS_PER_SECOND };
}

/** A process's own CPU time (children not included), seconds, split into user and kernel time. */
export async function cpuTimes(pid: number): Promise<{ user: number; system: number }> {
  const fields = statFields(await readFile(`/proc/${pid}/stat`, 'utf8'));
  return { user: Number(fields[11]) / TICKS_PER_SECOND, system: Number(fields[12]) / TICKS_PER_SECOND };
}

/** The fields of /proc/PID/stat after the parenthesised command name, which may itself contain spaces. */
function statFields(stat: string): string[] {
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
}

/** `root` and every process below it (by parent pid). */
export async function processTree(root: number): Promise<number[]> {
  const parents = new Map<number, number[]>();
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = await readFile(`/proc/${entry}/stat`, 'utf8').catch(() => undefined);
    if (stat === undefined) continue;
    const ppid = Number(statFields(stat)[1]);
    const list = parents.get(ppid) ?? [];
    list.push(Number(entry));
    parents.set(ppid, list);
  }
  const out: number[] = [];
  const visit = (pid: number) => {
    out.push(pid);
    for (const child of parents.get(pid) ?? []) visit(child);
  };
  visit(root);
  return out;
}

export interface TreeSample {
  processes: number;
  rssKiB: number;
  pssKiB: number;
  cpuSeconds: number;
}

export async function sampleTree(root: number): Promise<TreeSample & { each: ProcessSample[] }> {
  const each = (await Promise.all((await processTree(root)).map(sampleProcess))).filter((s): s is ProcessSample => s !== undefined);
  return {
    each,
    processes: each.length,
    rssKiB: each.reduce((sum, s) => sum + s.rssKiB, 0),
    pssKiB: each.reduce((sum, s) => sum + s.pssKiB, 0),
    cpuSeconds: each.reduce((sum, s) => sum + s.cpuSeconds, 0),
  };
}

export interface MemoryReport {
  /** At the start of the measurement. */
  idleRssMiB: number;
  idlePssMiB: number;
  /** Sum over the processes seen of each one's VmHWM (one process: its own peak RSS). */
  peakRssMiB: number;
  /** Highest sampled sum of Pss. */
  peakPssMiB: number;
  /** Most processes at once. */
  peakProcesses: number;
  /** CPU seconds the tree used during the measurement (from mark() when called). */
  cpuSeconds: number;
}

/**
 * Samples a process tree every `intervalMs` until stopped. With several processes the peak RSS is
 * the sum of each one's own peak: an upper bound (they need not peak together, and shared pages
 * count once per process); Pss is the fair sum.
 */
export class TreeSampler {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> = Promise.resolve();
  private readonly hwm = new Map<number, number>();
  private peakPss = 0;
  private peakProcesses = 0;
  private idle: TreeSample | undefined;
  private marked: Promise<TreeSample> | undefined;
  private report: Promise<MemoryReport> | undefined;

  private constructor(private readonly root: () => number | undefined) {}

  /** `root` is asked at every sample (a Postfix master may be restarted under the same instance). */
  static async start(root: () => number | undefined, intervalMs = 200): Promise<TreeSampler> {
    const sampler = new TreeSampler(root);
    sampler.idle = await sampler.sample();
    sampler.timer = setInterval(() => {
      sampler.running = sampler.running.then(() => sampler.sample()).then(() => undefined);
    }, intervalMs);
    return sampler;
  }

  private async sample(): Promise<TreeSample> {
    const pid = this.root();
    if (pid === undefined) return { processes: 0, rssKiB: 0, pssKiB: 0, cpuSeconds: 0 };
    const tree = await sampleTree(pid);
    for (const p of tree.each) this.hwm.set(p.pid, Math.max(this.hwm.get(p.pid) ?? 0, p.hwmKiB));
    this.peakPss = Math.max(this.peakPss, tree.pssKiB);
    this.peakProcesses = Math.max(this.peakProcesses, tree.processes);
    return tree;
  }

  /** CPU time is counted from now instead of from the start (e.g. after a warm-up). */
  mark(): void {
    this.marked = this.sample();
  }

  /** Stops sampling and reports; later calls return the same report. */
  stop(): Promise<MemoryReport> {
    this.report ??= this.finish();
    return this.report;
  }

  private async finish(): Promise<MemoryReport> {
    clearInterval(this.timer);
    await this.running;
    const last = await this.sample();
    const idle = this.idle!;
    const from = (await this.marked) ?? idle;
    return {
      idleRssMiB: idle.rssKiB / 1024,
      idlePssMiB: idle.pssKiB / 1024,
      peakRssMiB: [...this.hwm.values()].reduce((a, b) => a + b, 0) / 1024,
      peakPssMiB: this.peakPss / 1024,
      peakProcesses: this.peakProcesses,
      cpuSeconds: last.cpuSeconds - from.cpuSeconds,
    };
  }
}
