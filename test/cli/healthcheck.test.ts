import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createServer as createHttpServer, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { checkHealth, HEALTHCHECK_PATH, probeHost } from '../../cli/healthcheck.ts';
import type { AgentConfig } from '../../edge-agent/config/agentConfigSchema.ts';
import { startTestAgent, type TestAgent } from '../../testbed/helpers/agentHarness.ts';

/** `smarthost healthcheck` (the container's HEALTHCHECK): /readyz with a status block, else the SMTP greeting. */

const TLS_DIR = join(import.meta.dirname, '../../testbed/fixtures/tls');

/** The agent's config with the ports it really listens on (the harness asks for port 0). */
function listening(agent: TestAgent): AgentConfig {
  const { config } = agent;
  return {
    ...config,
    listen: { ...config.listen, port: agent.address.port },
    status: config.status && { ...config.status, port: agent.status!.address.port },
  };
}

async function listen(server: Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

describe('smarthost healthcheck', () => {
  const agents: TestAgent[] = [];
  const servers: Server[] = [];
  after(async () => {
    await Promise.all(agents.map((agent) => agent.dispose()));
    await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
  });

  it('without a status block reads the SMTP greeting: healthy on 220, unhealthy when nothing listens', async () => {
    const agent = await startTestAgent();
    agents.push(agent);
    const config = listening(agent);
    const result = await checkHealth(config);
    assert.equal(result.healthy, true);
    assert.match((result as { answer: string }).answer, /^220 /);

    await agent.stop();
    const down = await checkHealth(config);
    assert.deepEqual(down, { healthy: false, reason: `cannot connect to 127.0.0.1:${config.listen.port}: connect ECONNREFUSED 127.0.0.1:${config.listen.port}` });
  });

  it('with a status block asks /readyz over HTTP and reports its 200', async () => {
    const agent = await startTestAgent({ status: { host: '127.0.0.1', port: 0 } });
    agents.push(agent);
    const config = listening(agent);
    const result = await checkHealth(config);
    assert.deepEqual(result, { healthy: true, answer: `http://127.0.0.1:${config.status!.port}${HEALTHCHECK_PATH} answered 200 ready` });
  });

  it('is unhealthy on a 503 from /readyz, with its reason', async () => {
    const requested: string[] = [];
    const server = createHttpServer((request, response) => {
      requested.push(request.url ?? '');
      response.writeHead(503, { 'content-type': 'text/plain' }).end('not ready: the SMTP intake is not listening');
    });
    servers.push(server);
    const port = await listen(server);
    const agent = await startTestAgent({ status: { host: '127.0.0.1', port: 0 } });
    agents.push(agent);
    const config: AgentConfig = { ...agent.config, status: { ...agent.config.status!, port } };
    const result = await checkHealth(config);
    assert.deepEqual(result, { healthy: false, reason: `http://127.0.0.1:${port}/readyz answered 503 not ready: the SMTP intake is not listening` });
    assert.deepEqual(requested, ['/readyz']);
  });

  it('over HTTPS trusts the listener\'s own certificate (one a CA issued), and no other', async () => {
    const tls = { cert: join(TLS_DIR, 'server.crt'), key: join(TLS_DIR, 'server.key') };
    const agent = await startTestAgent({ status: { host: '127.0.0.1', port: 0, auth: { token: 'healthcheck-token-0123456789' }, tls } });
    agents.push(agent);
    const config = listening(agent);
    assert.deepEqual(await checkHealth(config), { healthy: true, answer: `https://127.0.0.1:${config.status!.port}/readyz answered 200 ready` });

    // Something else on the port, with a certificate that is not the configured one.
    const impostor = createHttpsServer({ cert: readFileSync(join(TLS_DIR, 'client.crt')), key: readFileSync(join(TLS_DIR, 'client.key')) }, (_request, response) => response.end('ready'));
    servers.push(impostor);
    const port = await listen(impostor);
    const result = await checkHealth({ ...config, status: { ...config.status!, port } });
    assert.equal(result.healthy, false);
    assert.match((result as { reason: string }).reason, new RegExp(`^https://127\\.0\\.0\\.1:${port}/readyz: self-signed certificate\\b`));
  });

  it('probes a wildcard listener on loopback of its family', () => {
    assert.equal(probeHost('0.0.0.0'), '127.0.0.1');
    assert.equal(probeHost('::'), '::1');
    assert.equal(probeHost('10.0.0.5'), '10.0.0.5');
  });
});
