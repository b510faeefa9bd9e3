import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';

export const BIN = fileURLToPath(new URL('../../bin/smarthost.mjs', import.meta.url));

export interface AgentProcess {
  child: ChildProcess;
  port: number;
  /** Every stdout line so far (JSON logs). */
  lines: string[];
  /** Resolves with the exit code (or signal name). */
  exited: Promise<number | string>;
}

/** Writes a config file (JSON is valid YAML) and returns its path. */
export async function writeConfig(dir: string, config: unknown, name = 'smarthost.yaml'): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, JSON.stringify(config, null, 2));
  return path;
}

/** The bundled build that `npm start` runs (`npm run build` makes it). */
export const BUNDLE = fileURLToPath(new URL('../../dist/smarthost.mjs', import.meta.url));

/** Runs `smarthost start` as a real process (from the sources, or `entry`) and waits until it listens. */
export async function startAgentProcess(configPath: string, env: NodeJS.ProcessEnv = {}, entry = BIN): Promise<AgentProcess> {
  return startAgentCommand(process.execPath, [entry, 'start', '--config', configPath], { env: { ...process.env, ...env } });
}

/**
 * Runs a command that starts the agent (the single executable, say) and waits until it logs that
 * it listens. `env` is the whole environment of the process.
 */
export async function startAgentCommand(command: string, args: string[], options: { env: NodeJS.ProcessEnv; cwd?: string }): Promise<AgentProcess> {
  const child = spawn(command, args, { env: options.env, cwd: options.cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  const exited = once(child, 'exit').then(([code, signal]) => (code ?? signal) as number | string);
  const port = await new Promise<number>((resolve, reject) => {
    const rl = createInterface({ input: child.stdout! });
    rl.on('line', (line) => {
      lines.push(line);
      try {
        const record = JSON.parse(line) as { msg?: string; port?: number };
        if (record.msg === 'smarthost listening' && record.port) resolve(record.port);
      } catch {
        // not a log line
      }
    });
    let stderr = '';
    child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    void exited.then((code) => reject(new Error(`smarthost exited (${code}) before listening: ${stderr}`)));
  });
  return { child, port, lines, exited };
}

/** Runs a CLI command to completion. */
export async function runCli(args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return runCommand(process.execPath, [BIN, ...args], { cwd: options.cwd, env: { ...process.env, ...options.env } });
}

/** Runs `command` to completion with exactly `options.env` as its environment. */
export async function runCommand(command: string, args: string[], options: { cwd?: string; env: NodeJS.ProcessEnv }): Promise<{ code: number; stdout: string; stderr: string }> {
  const child = spawn(command, args, { cwd: options.cwd, env: options.env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const [code] = (await once(child, 'exit')) as [number];
  return { code, stdout, stderr };
}
