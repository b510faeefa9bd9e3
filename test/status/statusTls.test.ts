import assert from 'node:assert/strict';
import { get } from 'node:https';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { maskSecrets } from '../../edge-agent/config/maskSecrets.ts';
import { caPem } from '../../testbed/fakes/tlsFixtures.ts';
import { startTestAgent, type TestAgent } from '../../testbed/helpers/agentHarness.ts';

/** status.tls takes listen.tls's keys; status.auth's secrets are masked in check-config. */

const TLS_DIR = join(import.meta.dirname, '../../testbed/fixtures/tls');
const TOKEN = 'tls-token-0123456789abcdef';

function httpsGet(port: number, path: string, options: { minVersion?: 'TLSv1.2' | 'TLSv1.3'; maxVersion?: 'TLSv1.1' | 'TLSv1.3' } = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    get({ host: '127.0.0.1', port, path, ca: caPem, headers: { authorization: `Bearer ${TOKEN}` }, ...options }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    }).on('error', reject);
  });
}

describe('status listener over HTTPS', () => {
  let agent: TestAgent;

  before(async () => {
    agent = await startTestAgent({ status: { host: '127.0.0.1', port: 0, auth: { token: TOKEN }, tls: { cert: join(TLS_DIR, 'server.crt'), key: join(TLS_DIR, 'server.key') } } });
  });
  after(() => agent.dispose());

  it('serves the metrics over TLS with the configured certificate, and refuses TLS 1.1', async () => {
    const port = agent.status?.address.port as number;
    const { status, body } = await httpsGet(port, '/metrics');
    assert.equal(status, 200);
    assert.match(body, /^smarthost_messages_accepted_total 0$/m);
    await assert.rejects(httpsGet(port, '/healthz', { maxVersion: 'TLSv1.1' }), /protocol|version|alert/i);
  });

  it('masks the token and the password in the printed configuration', () => {
    const masked = maskSecrets({ ...agent.config, status: { ...agent.config.status!, auth: { token: TOKEN, username: 'admin', password: 'secret-password' } } }) as { status: { auth: Record<string, string> } };
    assert.deepEqual(masked.status.auth, { token: '********', username: 'admin', password: '********' });
  });
});
