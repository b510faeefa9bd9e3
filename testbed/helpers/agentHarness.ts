import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { createTransport } from 'nodemailer';
import { agentConfigSchema, type AgentConfig, type AgentConfigInput } from '../../edge-agent/config/agentConfigSchema.ts';
import { startAgent, type AgentDependencies, type RunningAgent } from '../../edge-agent/agent.ts';
import { createLogger } from '../../edge-agent/logger.ts';
import type { AttemptRecord } from '../../edge-agent/spool-delivery/spoolDeliveryLoop.ts';

/** Every log line the agent wrote, for assertions (and for checking no secret leaks). */
export class LogCapture extends Writable {
  readonly lines: string[] = [];

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: () => void): void {
    this.lines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
    callback();
  }

  get text(): string {
    return this.lines.join('\n');
  }

  records(): Record<string, unknown>[] {
    return this.lines.map((line) => JSON.parse(line) as Record<string, unknown>);
  }
}

export interface TestAgent extends RunningAgent {
  config: AgentConfig;
  logs: LogCapture;
  dir: string;
  /** Stops the agent and removes its folders. */
  dispose(): Promise<void>;
}

export async function makeTempDir(prefix = 'smarthost-test-'): Promise<string> {
  return mkdtemp(join(tmpdir(), prefix));
}

/** An agent on 127.0.0.1 with a free port and its own spool and outbox folders. */
export async function startTestAgent(input: AgentConfigInput = {}, deps: Partial<AgentDependencies> = {}, dir?: string): Promise<TestAgent> {
  const base = dir ?? (await makeTempDir());
  const config = agentConfigSchema.parse({
    ...input,
    listen: { host: '127.0.0.1', port: 0, ...input.listen },
    spool: { dir: join(base, 'spool'), ...input.spool },
    outbox: { dir: join(base, 'outbox'), ...input.outbox },
    log: { level: 'debug', ...input.log },
  });
  const logs = new LogCapture();
  const agent = await startAgent(config, { logger: createLogger(config.log.level, logs), ...deps });
  let stopped = false;
  // The running agent stays the prototype: its worker/forwarder getters must not be read here.
  const extra = {
    config,
    logs,
    dir: base,
    async stop(timeoutMs?: number) {
      if (!stopped) {
        stopped = true;
        await agent.stop(timeoutMs ?? 2_000);
      }
    },
    async dispose() {
      if (!stopped) {
        stopped = true;
        await agent.stop(2_000);
      }
      if (!dir) {
        await rm(base, { recursive: true, force: true });
      }
    },
  };
  return Object.assign(Object.create(agent) as RunningAgent, extra);
}

/** nodemailer as the office device: plain SMTP on loopback, optional AUTH, pooled when asked. */
export function deviceClient(port: number, options: { auth?: { user: string; pass: string }; pool?: boolean; localAddress?: string; maxConnections?: number } = {}) {
  return createTransport({
    host: '127.0.0.1',
    port,
    secure: false,
    ignoreTLS: true,
    pool: options.pool ?? false,
    maxConnections: options.maxConnections,
    localAddress: options.localAddress,
    auth: options.auth,
    connectionTimeout: 10_000,
    socketTimeout: 30_000,
    logger: false,
  } as Parameters<typeof createTransport>[0]);
}

/** Sends raw device bytes with an explicit envelope; resolves with the server's reply text. */
export async function sendRaw(port: number, from: string, to: string[], raw: Buffer | string): Promise<string> {
  const transport = deviceClient(port);
  try {
    const info = await transport.sendMail({ envelope: { from, to }, raw });
    return info.response;
  } finally {
    transport.close();
  }
}

/** Resolves with the first delivery attempt record that matches; rejects after timeoutMs. */
export function waitForAttempt(agent: RunningAgent, match: (record: AttemptRecord) => boolean, timeoutMs = 10_000): Promise<AttemptRecord> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      agent.deliveryLoop.off('attempt', listener);
      reject(new Error(`no matching delivery attempt within ${timeoutMs} ms`));
    }, timeoutMs);
    const listener = (record: AttemptRecord) => {
      if (match(record)) {
        clearTimeout(timer);
        agent.deliveryLoop.off('attempt', listener);
        resolve(record);
      }
    };
    agent.deliveryLoop.on('attempt', listener);
  });
}
