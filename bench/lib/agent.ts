import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { rmSync } from 'node:fs';
import { chmod, copyFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { UpstreamConfigInput } from '../../delivery/upstreamConfig.ts';
import { BUNDLE, writeConfig } from '../../testbed/helpers/agentProcess.ts';

/** The bundled agent (`dist/smarthost.mjs`, what `npm start` runs) in a spool of its own. */
export interface BenchAgent {
  pid: number;
  port: number;
  /** The status listener's port (`status` asked for). */
  statusPort?: number;
  dir: string;
  /** The last log lines (JSON), for error reports. */
  lastLines(n?: number): string[];
  stop(): Promise<void>;
}

export interface AgentOptions {
  /** Deliver here; absent: the embedded default, the outbox. */
  upstream?: UpstreamConfigInput;
  /** Extra environment for the agent process (experiments: UV_THREADPOOL_SIZE, NODE_OPTIONS). */
  env?: NodeJS.ProcessEnv;
  /** Options for node itself, before the script (e.g. `--cpu-prof`, which NODE_OPTIONS refuses). */
  nodeArgs?: string[];
  /** Turn the status listener (console, /metrics) on, on a loopback port of its own. */
  status?: boolean;
}

/** Every agent started and not yet stopped, so an interrupted run can still stop them. */
const running = new Map<ChildProcess, string>();
let nodeCopy: Promise<string> | undefined;
let nodeCopyDir: string | undefined;

/**
 * A copy of the node executable for the agent alone. The benchmark's own processes (this one, the
 * fake upstream) run node too, and Pss divides the executable's pages (about 40 MiB resident)
 * among every process mapping the same file: with the shared binary the agent's PSS would look
 * smaller than on a box where it is the only node process. A copy is a different file.
 */
function privateNode(): Promise<string> {
  nodeCopy ??= (async () => {
    nodeCopyDir = await mkdtemp(join(tmpdir(), 'smarthost-bench-node-'));
    const path = join(nodeCopyDir, 'node');
    await copyFile(process.execPath, path);
    await chmod(path, 0o755);
    return path;
  })();
  return nodeCopy;
}

/** Kills every agent still running, removes its spool and the node copy, synchronously (exit and signal handlers). */
export function killAgentsNow(): void {
  for (const [child, dir] of running) {
    child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
  running.clear();
  if (nodeCopyDir) rmSync(nodeCopyDir, { recursive: true, force: true });
  nodeCopyDir = undefined;
  nodeCopy = undefined;
}

export async function startAgent(options: AgentOptions = {}): Promise<BenchAgent> {
  const dir = await mkdtemp(join(tmpdir(), 'smarthost-bench-'));
  const config = await writeConfig(dir, {
    listen: { host: '127.0.0.1', port: 0, maxConnections: 200, maxConnectionsPerClient: 100, maxMessageSize: '40MB' },
    spool: { dir: join(dir, 'spool') },
    outbox: { dir: join(dir, 'outbox') },
    ...(options.upstream ? { upstream: options.upstream } : {}),
    ...(options.status ? { status: { host: '127.0.0.1', port: 0 } } : {}),
    log: { level: 'info' },
  });
  const child = spawn(await privateNode(), [...(options.nodeArgs ?? []), BUNDLE, 'start', '--config', config], {
    // What the systemd unit in docs/operations.md sets: glibc's per-thread malloc arenas (V8's and
    // libuv's threads) otherwise hold 5-10 MB more under load.
    env: { ...process.env, MALLOC_ARENA_MAX: '2', ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  running.set(child, dir);
  const exited = once(child, 'exit').then(([code, signal]) => (code ?? signal) as number | string);
  // Keep the last log lines only: long runs log a line or two per message.
  const lines: string[] = [];
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-4000)));
  let port: number;
  let statusPort: number | undefined;
  try {
    // The status listener starts before SMTP intake (agent.ts), so its line comes first.
    port = await new Promise<number>((resolve, reject) => {
      createInterface({ input: child.stdout! }).on('line', (line) => {
        lines.push(line);
        if (lines.length > 200) lines.splice(0, 100);
        try {
          const record = JSON.parse(line) as { msg?: string; port?: number };
          if (record.msg === 'status listener started' && record.port) statusPort = record.port;
          if (record.msg === 'smarthost listening' && record.port) resolve(record.port);
        } catch {
          // not a log line
        }
      });
      void exited.then((code) => reject(new Error(`smarthost exited (${code}) before listening: ${stderr}`)));
    });
    if (options.status && statusPort === undefined) throw new Error('smarthost listened for SMTP without logging its status listener');
  } catch (error) {
    child.kill('SIGKILL');
    running.delete(child);
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
  return {
    pid: child.pid!,
    port,
    statusPort,
    dir,
    lastLines: (n = 10) => [...lines.slice(-n), ...(stderr ? [`stderr: ${stderr.slice(-500)}`] : [])],
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
        await exited;
        clearTimeout(timer);
      }
      running.delete(child);
      await rm(dir, { recursive: true, force: true });
    },
  };
}
