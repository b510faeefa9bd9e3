import { connect } from 'node:net';
import type { AgentConfig } from '../edge-agent/config/agentConfigSchema.ts';

/** How long `smarthost healthcheck` waits for the greeting: well inside Docker's default 30 s timeout. */
export const HEALTHCHECK_TIMEOUT_MS = 5_000;

export type HealthResult = { healthy: true; greeting: string } | { healthy: false; reason: string };

/**
 * The address a probe on the same host reaches the listener at: a wildcard listener is reached on
 * loopback of its family.
 */
export function probeHost(listenHost: string): string {
  if (listenHost === '0.0.0.0' || listenHost === '') return '127.0.0.1';
  if (listenHost === '::') return '::1';
  return listenHost;
}

/**
 * Connects to the relay's own SMTP port and reads the greeting (`smarthost healthcheck`, the
 * container's HEALTHCHECK): healthy when the agent answers 220, or 554 when loopback is not in
 * `clients` (the agent answered; each such probe is logged as a refused connection). A 421 (shutting
 * down, too many connections), another reply, silence or a refused connection is unhealthy.
 */
export function checkHealth(config: AgentConfig, timeoutMs = HEALTHCHECK_TIMEOUT_MS): Promise<HealthResult> {
  const host = probeHost(config.listen.host);
  const { port } = config.listen;
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    let received = '';
    let done = false;
    const finish = (result: HealthResult) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.removeAllListeners('data');
      if (result.healthy) socket.end('QUIT\r\n');
      else socket.destroy();
      resolve(result);
    };
    const timer = setTimeout(() => finish({ healthy: false, reason: `no SMTP greeting from ${host}:${port} within ${timeoutMs} ms` }), timeoutMs);
    socket.on('error', (error) => finish({ healthy: false, reason: `cannot connect to ${host}:${port}: ${error.message}` }));
    socket.on('data', (chunk: Buffer) => {
      received += chunk.toString('latin1');
      // The greeting's last line is "220 ..." (earlier lines of a multi-line one are "220-...").
      const last = received.split('\r\n').find((line) => /^\d{3}( |$)/.test(line));
      if (last === undefined) return;
      const code = last.slice(0, 3);
      finish(code === '220' || code === '554' ? { healthy: true, greeting: last } : { healthy: false, reason: `${host}:${port} answered "${last}"` });
    });
    socket.on('close', () => finish({ healthy: false, reason: `${host}:${port} closed the connection before its greeting` }));
  });
}
