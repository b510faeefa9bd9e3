import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';

export interface LoggingProcess {
  child: ChildProcess;
  /** Every stdout line so far (JSON logs). */
  lines: string[];
  /** The log record that said the process is ready. */
  ready: Record<string, unknown>;
  /** Resolves with the exit code (or signal name). */
  exited: Promise<number | string>;
}

/**
 * Runs `node ARGS` and resolves once it logs a JSON line whose msg is `readyMessage` (what
 * startAgentProcess does for `smarthost start`, for any entry: the test worker included). A
 * process that is not ready within `timeoutMs` is killed, so a failed start never leaves the
 * test run waiting on it.
 */
export async function startLoggingProcess(args: string[], env: NodeJS.ProcessEnv, readyMessage: string, timeoutMs = 30_000): Promise<LoggingProcess> {
  const child = spawn(process.execPath, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  const exited = once(child, 'exit').then(([code, signal]) => (code ?? signal) as number | string);
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const ready = await new Promise<Record<string, unknown>>((resolve, reject) => {
    createInterface({ input: child.stdout! }).on('line', (line) => {
      lines.push(line);
      try {
        const record = JSON.parse(line) as Record<string, unknown>;
        if (record.msg === readyMessage) resolve(record);
      } catch {
        // not a log line
      }
    });
    void exited.then((code) => reject(new Error(`${args.join(' ')} exited (${code}) before "${readyMessage}": ${stderr.slice(-2000)}`)));
  }).finally(() => clearTimeout(timer));
  return { child, lines, ready, exited };
}
