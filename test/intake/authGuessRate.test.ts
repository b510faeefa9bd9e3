import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startTestAgent, type TestAgent } from '../../testbed/helpers/agentHarness.ts';
import type { RawSmtpClient } from '../../testbed/helpers/rawSmtpClient.ts';
import { openSession } from './helpers/smtpSession.ts';

const CREDENTIALS = { username: 'helpdesk', password: 'helpdesk-pass-7c1d' };
const BAD_CREDENTIALS = '535 5.7.8 Authentication credentials invalid';
const GUESS_MS = 6_000;

const plain = (user: string, pass: string) => Buffer.from(`\0${user}\0${pass}`).toString('base64');

/**
 * `connections` parallel sessions from one address, each sending a wrong password as soon as the
 * previous one was answered, for GUESS_MS; returns how many guesses were answered.
 */
async function guess(agent: TestAgent, localAddress: string, connections: number): Promise<number> {
  const clients: RawSmtpClient[] = await Promise.all(Array.from({ length: connections }, () => openSession(agent.address.port, { localAddress })));
  const until = performance.now() + GUESS_MS;
  let answered = 0;
  await Promise.all(
    clients.map(async (client, c) => {
      for (let i = 0; ; i++) {
        const reply = await Promise.race([client.command(`AUTH PLAIN ${plain(CREDENTIALS.username, `guess-${c}-${i}`)}`), sleepUntil(until)]);
        if (reply === undefined) return;
        assert.equal(reply, BAD_CREDENTIALS);
        answered += 1;
      }
    }),
  );
  for (const client of clients) client.close();
  return answered;
}

function sleepUntil(at: number): Promise<undefined> {
  return new Promise((resolve) => setTimeout(() => resolve(undefined), Math.max(0, at - performance.now())));
}

describe('AUTH guesses over parallel connections', () => {
  let agent: TestAgent;

  before(async () => {
    agent = await startTestAgent({
      clients: [
        { name: 'helpdesk', address: '127.0.0.2', auth: CREDENTIALS },
        { name: 'guesser-a', address: '127.0.0.3', auth: CREDENTIALS },
        { name: 'guesser-b', address: '127.0.0.4', auth: CREDENTIALS },
      ],
    });
  });

  after(async () => {
    await agent?.dispose();
  });

  // One address's failures are answered one after another, 0, 250, 500, 1000, 2000 ms apart:
  // 5 answers in the first 6 s (the 6th comes at 7.75 s) however many connections ask.
  for (const [connections, address] of [[10, '127.0.0.3'], [20, '127.0.0.4']] as const) {
    test(`${connections} parallel connections from one address get at most 6 wrong passwords answered in ${GUESS_MS / 1000} s, and a correct login from another address meanwhile is answered at once`, async (t) => {
      const flood = guess(agent, address, connections);
      // Let the flood fill the queue before the device logs in.
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      const device = await openSession(agent.address.port, { localAddress: '127.0.0.2' });
      const started = performance.now();
      assert.equal(await device.command(`AUTH PLAIN ${plain(CREDENTIALS.username, CREDENTIALS.password)}`), '235 Authentication successful');
      const loginMs = performance.now() - started;
      device.close();
      const answered = await flood;
      t.diagnostic(`${connections} connections: ${answered} guesses answered in ${GUESS_MS} ms (${((answered * 1000) / GUESS_MS).toFixed(2)}/s); correct login from another address in ${loginMs.toFixed(0)} ms`);
      assert.ok(answered <= 6, `${answered} guesses answered in ${GUESS_MS} ms`);
      assert.ok(answered >= 4, `the guesser is slowed, not cut off: ${answered} answered`);
      assert.ok(loginMs < 500, `correct login took ${loginMs.toFixed(0)} ms`);
    });
  }
});
