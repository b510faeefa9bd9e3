import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { sendRaw, startTestAgent, type TestAgent } from '../../testbed/helpers/agentHarness.ts';
import { STATUS_LIMITS } from '../../edge-agent/status/statusServer.ts';

const TOKEN = 'test-token-0123456789abcdef';
const USER = 'admin';
const PASSWORD = 'correct-horse-battery';
const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
const MESSAGE = 'From: scanner@contoso.com\r\nTo: alice@contoso.com\r\nSubject: scan\r\nMessage-ID: <scan-1@printer>\r\n\r\nbody\r\n';

/** Sends raw request bytes (fetch would normalize `..` away) and resolves with the status line's code. */
async function rawRequest(port: number, text: string): Promise<{ code: number; head: string }> {
  const socket = connect(port, '127.0.0.1');
  socket.write(text);
  let data = '';
  socket.setEncoding('latin1');
  socket.on('data', (chunk: string) => (data += chunk));
  await once(socket, 'close');
  const code = Number(/^HTTP\/1\.1 (\d{3})/.exec(data)?.[1] ?? 0);
  return { code, head: data.split('\r\n\r\n')[0] ?? '' };
}

describe('status listener: health, metrics and its limits', () => {
  let agent: TestAgent;
  let base: string;
  let port: number;

  before(async () => {
    agent = await startTestAgent(
      { status: { host: '127.0.0.1', port: 0, auth: { token: TOKEN, username: USER, password: PASSWORD } } },
      { statusLimits: { ...STATUS_LIMITS, headersTimeoutMs: 800, requestTimeoutMs: 1_500, timeoutCheckMs: 100 } },
    );
    port = agent.status?.address.port as number;
    base = `http://127.0.0.1:${port}`;
  });
  after(() => agent.dispose());

  const smtpStillAnswers = async () => assert.match(await sendRaw(agent.address.port, 'scanner@contoso.com', ['alice@contoso.com'], MESSAGE), /^250 2\.0\.0 Ok: queued as /);

  it('answers /healthz and /readyz without a credential', async () => {
    const health = await fetch(`${base}/healthz`);
    assert.equal(health.status, 200);
    assert.equal(await health.text(), 'ok\n');
    const ready = await fetch(`${base}/readyz`);
    assert.equal(ready.status, 200);
    assert.equal(await ready.text(), 'ready\n');
  });

  it('asks for a credential with 401 and WWW-Authenticate, and refuses a wrong one', async () => {
    const none = await fetch(`${base}/metrics`);
    assert.equal(none.status, 401);
    assert.equal(none.headers.get('www-authenticate'), 'Basic realm="smarthost", charset="UTF-8"');
    assert.equal((await fetch(`${base}/`, { headers: { authorization: basic(USER, 'wrong-password') } })).status, 401);
    assert.equal((await fetch(`${base}/metrics`, { headers: { authorization: 'Bearer not-the-token-at-all' } })).status, 401);
    assert.equal((await fetch(`${base}/`, { headers: { authorization: basic(USER, PASSWORD) } })).status, 200);
  });

  it('counts accepted messages in /metrics, in the Prometheus text format', async () => {
    await smtpStillAnswers();
    const response = await fetch(`${base}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } });
    assert.equal(response.status, 200);
    assert.match(response.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
    const text = await response.text();
    assert.match(text, /^smarthost_messages_accepted_total [1-9]\d*$/m);
    assert.match(text, /^# TYPE smarthost_delivery_duration_seconds histogram$/m);
    assert.match(text, /^smarthost_queue_messages \d+$/m);
    assert.match(text, /^smarthost_spool_disk_bytes\{area="queue"\} \d+$/m);
    assert.match(text, /^smarthost_process_resident_memory_bytes \d+$/m);
  });

  it('answers a wrong method with 405 and Allow', async () => {
    const response = await fetch(`${base}/metrics`, { method: 'DELETE', headers: { authorization: `Bearer ${TOKEN}` } });
    assert.equal(response.status, 405);
    assert.equal(response.headers.get('allow'), 'GET, HEAD');
    assert.equal((await fetch(`${base}/queue`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` } })).status, 405);
  });

  it('refuses path tricks with 400 and unknown paths with 404', async () => {
    const auth = `Authorization: Bearer ${TOKEN}\r\n`;
    for (const path of ['/../etc/passwd', '/messages/../metrics', '/%2e%2e/metrics', '/messages/%2E%2E', '/messages%2fabc', '/messages/abc%5c..', '/messages//x', '/a%00b', '/%zz', 'metrics']) {
      const { code } = await rawRequest(port, `GET ${path} HTTP/1.1\r\nHost: x\r\n${auth}Connection: close\r\n\r\n`);
      assert.equal(code, 400, path);
    }
    assert.equal((await fetch(`${base}/nothing-here`, { headers: { authorization: `Bearer ${TOKEN}` } })).status, 404);
    assert.equal((await fetch(`${base}/messages/not..an..id`, { headers: { authorization: `Bearer ${TOKEN}` } })).status, 404);
    await smtpStillAnswers();
  });

  it('refuses an oversized request body with 413 and oversized headers with 431', async () => {
    const big = await fetch(`${base}/messages/0000000000-abcdefgh/delete`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/x-www-form-urlencoded' }, body: 'x='.padEnd(100_000, 'y') });
    assert.equal(big.status, 413);
    const { code } = await rawRequest(port, `GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\nConnection: close\r\n\r\n`);
    assert.equal(code, 431);
    await smtpStillAnswers();
  });

  it('closes a client that trickles its headers with 408, while SMTP keeps answering', async () => {
    const socket = connect(port, '127.0.0.1');
    socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\n');
    let data = '';
    socket.on('data', (chunk: Buffer) => (data += chunk.toString('latin1')));
    const started = Date.now();
    await smtpStillAnswers();
    await once(socket, 'close');
    assert.match(data, /^HTTP\/1\.1 408 /);
    assert.ok(Date.now() - started < 5_000, 'closed within the headers timeout');
  });

  it('serves many concurrent clients, and SMTP answers while the connection limit is full', async () => {
    const results = await Promise.all(Array.from({ length: 40 }, () => fetch(`${base}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } }).then(async (r) => (await r.text(), r.status))));
    assert.deepEqual(new Set(results), new Set([200]));
    const idle: Socket[] = [];
    for (let i = 0; i < STATUS_LIMITS.maxConnections + 20; i++) {
      const socket = connect(port, '127.0.0.1');
      socket.on('error', () => undefined);
      idle.push(socket);
    }
    await Promise.all(idle.map((s) => once(s, 'connect').catch(() => undefined)));
    try {
      await smtpStillAnswers();
    } finally {
      for (const s of idle) s.destroy();
    }
  });
});

describe('status listener configuration', () => {
  it('refuses a non-loopback host without auth, naming the key', async () => {
    const { agentConfigSchema } = await import('../../edge-agent/config/agentConfigSchema.ts');
    const result = agentConfigSchema.safeParse({ status: { host: '0.0.0.0' } });
    assert.equal(result.success, false);
    assert.deepEqual(result.error?.issues.map((i) => [i.path.join('.'), i.message]), [['status.auth', 'required when host is not loopback (0.0.0.0): set a token, or a username and password']]);
    assert.equal(agentConfigSchema.safeParse({ status: { host: '::1' } }).success, true);
  });
});
