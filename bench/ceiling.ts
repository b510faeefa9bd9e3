/**
 * What smtp-server itself does on this machine, for comparison with the agent's intake rows:
 * `node --import tsx bench/ceiling.ts`. The same raw-socket load (10 connections, 1 KiB and
 * 100 KiB) against smtp-server with no smarthost code, first answering 250 at once, then after
 * one writev and one fsync per message. The gap to the agent's figures is the agent's own work.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { KiB, percentile, runRaw } from './lib/smtpLoad.ts';
import { fixed, formatTable } from './lib/table.ts';

const SERVER = fileURLToPath(new URL('./lib/bareSmtpServer.ts', import.meta.url));
const rows: string[][] = [];
for (const mode of ['drain', 'fsync'] as const) {
  const child = spawn(process.execPath, ['--import', 'tsx', SERVER, mode], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    const [port] = (await once(createInterface({ input: child.stdout }), 'line')) as [string];
    for (const size of [KiB, 100 * KiB]) {
      const result = await runRaw(Number(port), { connections: 10, messages: 10_000, size, warmUpSeconds: 2, maxSeconds: 5 });
      const sorted = [...result.latencies].sort((a, b) => a - b);
      rows.push([`${size / KiB} KiB, 10 conn`, mode, String(result.sent), fixed(result.sent / result.seconds, 1), fixed(percentile(sorted, 99), 2)]);
    }
  } finally {
    child.kill('SIGTERM');
    await once(child, 'exit');
  }
}
console.log(formatTable(['scenario', 'bare smtp-server', 'msgs', 'msg/s', 'p99 ms'], rows));
