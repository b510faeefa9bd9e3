import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startTestAgent, type TestAgent } from '../../testbed/helpers/agentHarness.ts';
import { RawSmtpClient } from '../../testbed/helpers/rawSmtpClient.ts';
import { listDir } from './helpers/messageBytes.ts';
import { ehloCapabilities, openSession, queuedId, quit, sendMessage } from './helpers/smtpSession.ts';
import { readOutboxMessage } from '../../testbed/helpers/relayTrace.ts';

const MAX_MESSAGE = 64 * 1024;
const TOO_BIG = '552 5.3.4 Message size exceeds fixed maximum message size';

/** A message of exactly `size` bytes as stored (CRLF line ends, ending in CRLF). */
function messageOfSize(size: number): string {
  const head = 'Subject: size test\r\n\r\n';
  const line = `${'y'.repeat(98)}\r\n`;
  let body = head;
  while (body.length + line.length <= size - 3) {
    body += line;
  }
  return body + 'z'.repeat(size - body.length - 2) + '\r\n';
}

describe('intake limits', () => {
  let agent: TestAgent;

  before(async () => {
    agent = await startTestAgent({
      listen: { maxMessageSize: '64KB', maxRecipients: 3 },
    });
  });

  after(async () => {
    await agent?.dispose();
  });

  test('EHLO advertises SIZE with the configured limit, PIPELINING, 8BITMIME and SMTPUTF8', async () => {
    const { greeting, lines } = await ehloCapabilities(agent.address.port);
    assert.match(greeting, /^220 /);
    assert.ok(lines.includes(`SIZE ${MAX_MESSAGE}`), `EHLO lines: ${JSON.stringify(lines)}`);
    for (const extension of ['PIPELINING', '8BITMIME', 'SMTPUTF8']) {
      assert.ok(lines.includes(extension), `${extension} in ${JSON.stringify(lines)}`);
    }
    assert.ok(!lines.some((l) => l.startsWith('STARTTLS')), 'no STARTTLS without listen.tls');
  });

  test('a message of exactly maxMessageSize is accepted', async () => {
    const client = await openSession(agent.address.port);
    const body = messageOfSize(MAX_MESSAGE);
    assert.equal(body.length, MAX_MESSAGE);
    const id = queuedId(await sendMessage(client, 'scanner@contoso.com', ['alice@contoso.com'], body));
    await agent.deliveryLoop.whenIdle();
    assert.equal((await readOutboxMessage(agent.config.outbox.dir, id)).toString('latin1'), body);
    await quit(client);
  });

  for (const size of [MAX_MESSAGE + 1, 5 * MAX_MESSAGE]) {
    test(`a message of ${size} bytes (over maxMessageSize) gets 552 5.3.4 and nothing of it is kept`, async () => {
      const spool = agent.config.spool.dir;
      const outboxBefore = await listDir(agent.config.outbox.dir);
      const queueBefore = await listDir(join(spool, 'queue'));
      const client = await openSession(agent.address.port);
      assert.equal(await sendMessage(client, 'scanner@contoso.com', ['alice@contoso.com'], messageOfSize(size)), TOO_BIG);
      await agent.deliveryLoop.whenIdle();
      assert.deepEqual(await listDir(join(spool, 'tmp')), [], 'spool/tmp');
      assert.deepEqual(await listDir(join(spool, 'queue')), queueBefore, 'spool/queue');
      assert.deepEqual(await listDir(agent.config.outbox.dir), outboxBefore, 'outbox');
      // The refusal came after the whole body was read, so the session is in step.
      const id = queuedId(await sendMessage(client, 'scanner@contoso.com', ['alice@contoso.com'], 'Subject: small\r\n\r\nok\r\n'));
      await agent.deliveryLoop.whenIdle();
      assert.deepEqual(await listDir(agent.config.outbox.dir), [...outboxBefore, `${id}.envelope.json`, `${id}.eml`].sort());
      await quit(client);
    });
  }

  test('a recipient beyond maxRecipients gets 452 4.5.3 and the message goes to the ones accepted', async () => {
    const client = await openSession(agent.address.port);
    assert.equal(await client.command('MAIL FROM:<scanner@contoso.com>'), '250 Accepted');
    for (const rcpt of ['a@contoso.com', 'b@contoso.com', 'c@contoso.com']) {
      assert.equal(await client.command(`RCPT TO:<${rcpt}>`), '250 Accepted');
    }
    assert.equal(await client.command('RCPT TO:<d@contoso.com>'), '452 4.5.3 Too many recipients');
    assert.match(await client.command('DATA'), /^354 /);
    client.write('Subject: three\r\n\r\nx\r\n.\r\n');
    const [reply] = await client.read(1);
    const id = queuedId(reply ?? '');
    await agent.deliveryLoop.whenIdle();
    const envelope = JSON.parse(await readFile(join(agent.config.outbox.dir, `${id}.envelope.json`), 'utf8')) as { rcptTo: string[] };
    assert.deepEqual(envelope.rcptTo, ['a@contoso.com', 'b@contoso.com', 'c@contoso.com']);
    await quit(client);
  });
});

describe('intake connection limits', () => {
  let agent: TestAgent;

  before(async () => {
    agent = await startTestAgent({ listen: { maxConnectionsPerClient: 2 } });
  });

  after(async () => {
    await agent?.dispose();
  });

  test('a connection beyond maxConnectionsPerClient gets 421 4.7.0 while another address still gets in', async () => {
    const first = await openSession(agent.address.port);
    const second = await openSession(agent.address.port);
    const third = await RawSmtpClient.open(agent.address.port);
    assert.deepEqual(await third.read(1), ['421 4.7.0 Too many connections from your address, try again later']);
    await third.whenClosed();
    const other = await openSession(agent.address.port, { localAddress: '127.0.0.2' });
    assert.equal(await first.command('NOOP'), '250 OK', 'the admitted sessions are unaffected');
    await Promise.all([quit(first), quit(second), quit(other)]);
    assert.ok(
      agent.logs.records().some((r) => r.level === 40 && r.msg === 'connection refused: too many from one address' && r.ip === '127.0.0.1'),
      'the refusal is logged as a warning',
    );
  });
});

describe('listen.idleTimeout', () => {
  let agent: TestAgent;

  before(async () => {
    agent = await startTestAgent({ listen: { idleTimeout: '1s' } });
  });

  after(async () => {
    await agent?.dispose();
  });

  test('an idle connection is closed with 421 after listen.idleTimeout', async () => {
    const client = await openSession(agent.address.port);
    const started = Date.now();
    // No sleep here: the server's own timer produces the reply this waits for. It is
    // smtp-server's reply and carries no enhanced code.
    assert.deepEqual(await client.read(1), ['421 4.4.2 Idle too long: closing connection']);
    await client.whenClosed();
    assert.ok(Date.now() - started >= 900, `closed after ${Date.now() - started} ms`);
  });
});

describe('listen.maxConnections', () => {
  let agent: TestAgent;

  before(async () => {
    agent = await startTestAgent({ listen: { maxConnections: 1 } });
  });

  after(async () => {
    await agent?.dispose();
  });

  test('a connection beyond listen.maxConnections gets 421', async () => {
    const first = await openSession(agent.address.port);
    const second = await RawSmtpClient.open(agent.address.port, '127.0.0.2');
    assert.deepEqual(await second.read(1), ['421 4.7.0 Too many connections, try again later']);
    await second.whenClosed();
    await quit(first);
  });
});
