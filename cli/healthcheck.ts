import { readFileSync } from 'node:fs';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { connect } from 'node:net';
import type { AgentConfig, ListenConfig, StatusConfig } from '../edge-agent/config/agentConfigSchema.ts';

/** How long `smarthost healthcheck` waits for an answer: well inside Docker's default 30 s timeout. */
export const HEALTHCHECK_TIMEOUT_MS = 5_000;

/** What the probe asks the status listener: the intake listens, the spool takes mail, the upstream answers. */
export const HEALTHCHECK_PATH = '/readyz';

export type HealthResult = { healthy: true; answer: string } | { healthy: false; reason: string };

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
 * `smarthost healthcheck`, the container's HEALTHCHECK. With a `status` block it asks the status
 * listener's /readyz, which needs no credential and logs nothing; without one it reads the SMTP
 * greeting, the only sign of life the agent then gives.
 */
export function checkHealth(config: AgentConfig, timeoutMs = HEALTHCHECK_TIMEOUT_MS): Promise<HealthResult> {
  return config.status ? checkReadiness(config.status, timeoutMs) : checkGreeting(config.listen, timeoutMs);
}

/** Healthy on 200 from /readyz; its 503 says why not. */
function checkReadiness(status: StatusConfig, timeoutMs: number): Promise<HealthResult> {
  const host = probeHost(status.host);
  const url = `${status.tls ? 'https' : 'http'}://${host.includes(':') ? `[${host}]` : host}:${status.port}${HEALTHCHECK_PATH}`;
  return new Promise((resolve) => {
    const onResponse = (response: IncomingMessage) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (body += chunk));
      response.on('end', () => {
        const answer = `${url} answered ${response.statusCode} ${body.trim()}`;
        resolve(response.statusCode === 200 ? { healthy: true, answer } : { healthy: false, reason: answer });
      });
    };
    const request = status.tls
      ? // The listener's own certificate is the only one trusted, whatever name it was issued for:
        // the probe reaches it on loopback, which no certificate names.
        httpsRequest(url, { ca: readFileSync(status.tls.cert), allowPartialTrustChain: true, checkServerIdentity: () => undefined, timeout: timeoutMs }, onResponse)
      : httpRequest(url, { timeout: timeoutMs }, onResponse);
    request.on('timeout', () => request.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    request.on('error', (error) => resolve({ healthy: false, reason: `${url}: ${error.message}` }));
    request.end();
  });
}

/**
 * Connects to the relay's own SMTP port and reads the greeting: healthy when the agent answers 220,
 * or 554 when loopback is not in `clients` (the agent answered; each such probe is logged as a
 * refused connection). A 421 (shutting down, too many connections), another reply, silence or a
 * refused connection is unhealthy.
 */
function checkGreeting(listen: ListenConfig, timeoutMs: number): Promise<HealthResult> {
  const host = probeHost(listen.host);
  const { port } = listen;
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
      finish(code === '220' || code === '554' ? { healthy: true, answer: last } : { healthy: false, reason: `${host}:${port} answered "${last}"` });
    });
    socket.on('close', () => finish({ healthy: false, reason: `${host}:${port} closed the connection before its greeting` }));
  });
}
