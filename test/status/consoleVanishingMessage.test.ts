import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Spool } from '../../edge-agent/spool/spool.ts';
import { makeTempDir, startTestAgent, type TestAgent } from '../../testbed/helpers/agentHarness.ts';
import { seedSpool, type SeededSpool } from './seedSpool.ts';

const USER = 'admin';
const PASSWORD = 'console-pass-123';
const AUTH = { authorization: `Basic ${Buffer.from(`${USER}:${PASSWORD}`).toString('base64')}` };

/**
 * The race behind a CI flake: the console read a message while the delivery loop removed it (a
 * resend, then the redirect to its page). Reproduced without timing: the spool's look-up removes
 * the file right after it read the envelope, as the loop would have.
 */
describe('console: a message that goes while its page is built', () => {
  let dir: string;
  let agent: TestAgent;
  let seeded: SeededSpool;
  let base: string;
  const uncaught: Error[] = [];
  const onUncaught = (error: Error) => uncaught.push(error);

  /** Each look-up of `id` removes its file once it returned, like a delivery finishing just then. */
  function vanishAfterLookup(spool: Spool, id: string): void {
    for (const name of ['findMessage', 'locateMessage'] as const) {
      const real = spool[name].bind(spool) as (id: string) => Promise<{ where: string } | undefined>;
      (spool as unknown as Record<string, unknown>)[name] = async (asked: string) => {
        const found = await real(asked);
        // At once, before anything else runs: a stream that opens its path later finds it gone.
        if (asked === id && found) rmSync(join(found.where === 'queue' ? spool.queueDir : spool.failedDir, `${id}.msg`), { force: true });
        return found;
      };
    }
  }

  before(async () => {
    process.on('uncaughtException', onUncaught);
    dir = await makeTempDir();
    seeded = await seedSpool(join(dir, 'spool'));
    agent = await startTestAgent({ status: { host: '127.0.0.1', port: 0, auth: { username: USER, password: PASSWORD } } }, {}, dir);
    base = `http://127.0.0.1:${agent.status?.address.port}`;
  });
  after(async () => {
    // In order: the agent (and every request it still handles) stops before its folder goes.
    await agent?.dispose();
    await rm(dir, { recursive: true, force: true });
    process.off('uncaughtException', onUncaught);
  });

  it("shows a not-found page, not an uncaught ENOENT, when the message's file goes before its headers are read", async () => {
    vanishAfterLookup(agent.spool, seeded.held.id);
    const response = await fetch(`${base}/messages/${seeded.held.id}`, { headers: AUTH });
    assert.equal(response.status, 404);
    assert.match(await response.text(), /Nothing is known about/);
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.deepEqual(uncaught.map(String), []);
  });

  it('downloads the whole body of a message whose file goes once it was found', async () => {
    vanishAfterLookup(agent.spool, seeded.failed.id);
    const response = await fetch(`${base}/messages/${seeded.failed.id}/body`, { headers: AUTH });
    assert.equal(response.status, 200);
    assert.match(await response.text(), /^From: ups@contoso\.com\r\n[\s\S]*Subject: UPS on battery\r\n[\s\S]*\r\n\r\nThe scanned document is attached\.\r\n$/);
    const lines = agent.logs.records().filter((r) => r.messageId === seeded.failed.id);
    assert.ok(lines.some((r) => r.msg === 'operator downloaded a message'));
    assert.equal(agent.logs.text.includes('The scanned document is attached'), false, 'no body in the log');
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.deepEqual(uncaught.map(String), []);
  });
});
