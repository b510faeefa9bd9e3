import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { BareNewlinePolicy } from '../../edge-agent/intake/lineEndings.ts';
import { startTestAgent, type TestAgent } from '../../testbed/helpers/agentHarness.ts';
import { BARE_CR_OR_LF, listDir } from './helpers/messageBytes.ts';
import { HELP_REPLY, openSession, queuedId, quit, repliesUntil, sendMessage, startData } from './helpers/smtpSession.ts';
import { readOutboxMessage } from '../../testbed/helpers/relayTrace.ts';

/** Fake ends of data: each would end DATA on a server that takes a bare CR or LF as a line end. */
const FAKE_ENDS = ['\n.\n', '\n.\r\n', '\r\n.\n', '\r.\r', '\r.\r\n', '\r\n.\r', '\n..\n'];

const HEAD = 'Subject: one\r\n\r\nfirst part';
const SMUGGLED = 'MAIL FROM:<evil@contoso.com>\r\nRCPT TO:<victim@contoso.com>\r\nDATA\r\nSubject: smuggled\r\n\r\nsecond\r\n';
const DEVICE = { from: 'scanner@contoso.com', to: ['alice@contoso.com'] };
const FOLLOW_UP = 'Subject: after\r\n\r\nstill in step\r\n';

const shown = (bytes: string) => bytes.replace(/\r/g, '<CR>').replace(/\n/g, '<LF>');

/**
 * Sends the smuggling attempt, then HELP as a marker, and returns every reply in between: the
 * replies to the end of data and to anything a server might have taken as commands.
 */
async function attempt(agent: TestAgent, fakeEnd: string) {
  const client = await openSession(agent.address.port);
  await startData(client, DEVICE.from, DEVICE.to);
  client.write(`${HEAD}${fakeEnd}${SMUGGLED}\r\n.\r\nHELP\r\n`);
  const replies = await repliesUntil(client, HELP_REPLY);
  return { client, replies };
}

/** New outbox messages (by id) since `before`. */
async function newOutboxIds(agent: TestAgent, before: string[]): Promise<string[]> {
  await agent.deliveryLoop.whenIdle();
  return (await listDir(agent.config.outbox.dir))
    .filter((name) => name.endsWith('.eml') && !before.includes(name))
    .map((name) => name.slice(0, -'.eml'.length))
    .sort();
}

function smugglingSuite(policy: BareNewlinePolicy, check: (agent: TestAgent, fakeEnd: string) => Promise<void>) {
  describe(`SMTP smuggling with listen.bareNewlines: ${policy}`, () => {
    let agent: TestAgent;

    before(async () => {
      agent = await startTestAgent({ listen: { bareNewlines: policy } });
    });

    after(async () => {
      await agent?.dispose();
    });

    for (const fakeEnd of FAKE_ENDS) {
      const outcome = policy === 'normalize' ? 'stays text inside one message' : 'gets 550 5.6.0 and no message';
      test(`${shown(fakeEnd)} inside DATA ${outcome}, and the connection stays in step`, () => check(agent, fakeEnd));
    }
  });
}

smugglingSuite('normalize', async (agent, fakeEnd) => {
  const outboxBefore = await listDir(agent.config.outbox.dir);
  const { client, replies } = await attempt(agent, fakeEnd);
  assert.equal(replies.length, 1, `one reply before HELP, got ${JSON.stringify(replies)}`);
  const id = queuedId(replies[0] ?? '');
  assert.deepEqual(await newOutboxIds(agent, outboxBefore), [id], 'exactly one message reached the outbox');

  const stored = (await readOutboxMessage(agent.config.outbox.dir, id)).toString('latin1');
  // Every variant becomes the line "." between CRLFs: bare CR and LF are line ends, and
  // smtp-server removed the stuffing dot of "\n..\n" because it starts a line after the LF.
  // The CRLF that opens the real end of data ends the message's last (empty) line.
  assert.equal(stored, `${HEAD}\r\n.\r\n${SMUGGLED}\r\n`);
  assert.ok(stored.includes('Subject: smuggled'), 'the smuggled text is body');
  assert.ok(!BARE_CR_OR_LF.test(stored), 'every line end in the stored bytes is CRLF');
  const envelope = JSON.parse(await readFile(join(agent.config.outbox.dir, `${id}.envelope.json`), 'utf8')) as { mailFrom: string; rcptTo: string[] };
  assert.deepEqual({ mailFrom: envelope.mailFrom, rcptTo: envelope.rcptTo }, { mailFrom: DEVICE.from, rcptTo: DEVICE.to });

  const next = queuedId(await sendMessage(client, DEVICE.from, DEVICE.to, FOLLOW_UP));
  assert.deepEqual(await newOutboxIds(agent, outboxBefore), [id, next].sort());
  assert.equal((await readOutboxMessage(agent.config.outbox.dir, next)).toString('latin1'), FOLLOW_UP);
  await quit(client);
});

smugglingSuite('reject', async (agent, fakeEnd) => {
  const outboxBefore = await listDir(agent.config.outbox.dir);
  const { client, replies } = await attempt(agent, fakeEnd);
  assert.deepEqual(replies, ['550 5.6.0 Message contains a bare CR or LF; line ends must be CRLF']);
  assert.deepEqual(await newOutboxIds(agent, outboxBefore), [], 'no message reached the outbox');
  assert.deepEqual(await listDir(join(agent.config.spool.dir, 'tmp')), [], 'nothing left in spool/tmp');
  assert.deepEqual(await listDir(join(agent.config.spool.dir, 'queue')), [], 'nothing left in spool/queue');

  const next = queuedId(await sendMessage(client, DEVICE.from, DEVICE.to, FOLLOW_UP));
  assert.deepEqual(await newOutboxIds(agent, outboxBefore), [next]);
  await quit(client);
});
