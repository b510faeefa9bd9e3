import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startTestAgent, type TestAgent } from '../../testbed/helpers/agentHarness.ts';
import { readOutboxMessage } from '../../testbed/helpers/relayTrace.ts';
import { listDir } from './helpers/messageBytes.ts';
import { HELP_REPLY, openSession, queuedId, quit, repliesUntil } from './helpers/smtpSession.ts';

const FROM = 'scanner@contoso.com';
const TO = 'alice@contoso.com';

function body(n: number): string {
  return `Subject: message ${n}\r\n\r\nbody of message ${n}\r\n`;
}

/** Whole transactions back to back, as `nc host 25 < session.txt` sends them: DATA content before its 354. */
function transactions(count: number): string {
  let bytes = '';
  for (let n = 0; n < count; n++) {
    bytes += `MAIL FROM:<${FROM}>\r\nRCPT TO:<${TO}>\r\nDATA\r\n${body(n)}.\r\n`;
  }
  return bytes;
}

describe('whole transactions pipelined in one write', () => {
  let agent: TestAgent;

  before(async () => {
    agent = await startTestAgent();
  });

  after(async () => {
    await agent?.dispose();
  });

  for (const count of [3, 10, 100]) {
    test(`${count} transactions each get 250 Accepted, 250 Accepted, 354 and their own queued reply, and are stored once`, { timeout: 20_000 }, async () => {
      const before = await listDir(agent.config.outbox.dir);
      const client = await openSession(agent.address.port);
      // HELP marks the end: every reply before it belongs to the transactions.
      client.write(`${transactions(count)}HELP\r\n`);
      const replies = await repliesUntil(client, HELP_REPLY);
      assert.equal(replies.length, count * 4, `four replies per transaction, got ${replies.length}`);
      const ids: string[] = [];
      for (let n = 0; n < count; n++) {
        const [mail, rcpt, data, end] = replies.slice(n * 4, n * 4 + 4);
        assert.equal(mail, '250 Accepted');
        assert.equal(rcpt, '250 Accepted');
        assert.match(data ?? '', /^354 /);
        ids.push(queuedId(end ?? ''));
      }
      assert.equal(new Set(ids).size, count, 'every transaction has its own message id');
      await agent.deliveryLoop.whenIdle();
      const added = (await listDir(agent.config.outbox.dir)).filter((name) => name.endsWith('.eml') && !before.includes(name));
      assert.equal(added.length, count, 'exactly one stored message per transaction');
      for (const [n, id] of ids.entries()) {
        assert.equal((await readOutboxMessage(agent.config.outbox.dir, id)).toString('latin1'), body(n));
      }
      await quit(client);
    });
  }
});
