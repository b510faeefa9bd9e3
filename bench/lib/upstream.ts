import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import type { UpstreamConfigInput } from '../../delivery/upstreamConfig.ts';
import type { UpstreamReply, UpstreamRequest, UpstreamStats } from './upstreamProtocol.ts';

export type { UpstreamStats } from './upstreamProtocol.ts';

const SERVER = fileURLToPath(new URL('../upstreamServer.ts', import.meta.url));

/** The fake Exchange Online with its limits off, in a child process (bench/upstreamServer.ts). */
export interface FakeUpstream {
  readonly pid: number;
  readonly port: number;
  /** An agent `upstream` block for the fake: app-only OAuth2 (XOAUTH2) over STARTTLS. */
  readonly upstream: UpstreamConfigInput;
  /** AUTH LOGIN credentials the fake accepts (for Postfix's SASL client). */
  readonly basicUser: string;
  readonly basicPassword: string;
  /** Zeroes the counters. */
  reset(): Promise<UpstreamStats>;
  stats(): Promise<UpstreamStats>;
  /** Resolves once `count` messages arrived since the last reset (or with `error` after the timeout). */
  waitFor(count: number, timeoutMs: number): Promise<UpstreamStats & { error?: string }>;
  close(): Promise<void>;
}

type Request = UpstreamRequest extends infer R ? (R extends { id: number } ? Omit<R, 'id'> : never) : never;

export async function startFakeUpstream(): Promise<FakeUpstream> {
  // tsx as this package resolves it, whatever the working directory.
  const child: ChildProcess = spawn(process.execPath, ['--import', import.meta.resolve('tsx'), SERVER], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const exited = once(child, 'exit');
  const pending = new Map<number, (reply: Extract<UpstreamReply, { type: 'done' }>) => void>();
  let nextId = 1;
  const ready = new Promise<Extract<UpstreamReply, { type: 'ready' }>>((resolve, reject) => {
    child.on('message', (reply: UpstreamReply) => {
      if (reply.type === 'ready') resolve(reply);
      else pending.get(reply.id)?.(reply);
    });
    void exited.then(([code]) => reject(new Error(`fake upstream exited (${String(code)}) before it was ready`)));
  });
  let info: Extract<UpstreamReply, { type: 'ready' }>;
  try {
    info = await ready;
  } catch (error) {
    child.kill('SIGKILL');
    throw error;
  }

  function ask(request: Request): Promise<Extract<UpstreamReply, { type: 'done' }>> {
    const id = nextId++;
    return new Promise((resolve) => {
      pending.set(id, (reply) => {
        pending.delete(id);
        resolve(reply);
      });
      child.send({ ...request, id } as UpstreamRequest);
    });
  }

  return {
    pid: child.pid!,
    port: info.port,
    upstream: info.upstream,
    basicUser: info.basicUser,
    basicPassword: info.basicPassword,
    reset: async () => (await ask({ type: 'reset' })).stats,
    stats: async () => (await ask({ type: 'stats' })).stats,
    async waitFor(count, timeoutMs) {
      const reply = await ask({ type: 'wait', count, timeoutMs });
      return reply.error === undefined ? reply.stats : { ...reply.stats, error: reply.error };
    },
    async close() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.disconnect();
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(timer);
    },
  };
}
