import assert from 'node:assert/strict';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, afterEach, before, describe, test } from 'node:test';
import type { UpstreamConfigInput } from '../../delivery/upstreamConfig.ts';
import { RECIPIENT_BUDGET_FILE } from '../../edge-agent/spool-delivery/recipientBudgetFile.ts';
import { spoolHistory } from '../../edge-agent/spool/spoolHistory.ts';
import { REPLIES } from '../../testbed/fakes/fakeExchangeOnline.ts';
import { makeTempDir, sendRaw, startTestAgent, type TestAgent } from '../../testbed/helpers/agentHarness.ts';
import { RELAY_MAILBOX, startExchangeOnlineRig, type ExchangeOnlineRig } from '../../testbed/helpers/exchangeOnlineRig.ts';

const RELAY2 = 'relay2@contoso.com';
const FAX = 'faxservice@contoso.com';
const SCANNER = 'scanner@contoso.com';
const UPS = 'ups@contoso.com';
const THROTTLED = `${REPLIES.rate.code} ${REPLIES.rate.text}`;

/** relay@ alone may send as the fax, relay2@ alone as the scanner; the UPS is nobody's, so either sends it. */
function poolUpstream(rig: ExchangeOnlineRig, relayLimits: Record<string, number> = {}, shared: Partial<UpstreamConfigInput> = {}): UpstreamConfigInput {
  const { auth, ...block } = rig.upstream(shared);
  const { user: _user, ...app } = auth as { user: string };
  return {
    ...block,
    auth: app as UpstreamConfigInput['auth'],
    mailboxes: [
      { mailbox: RELAY_MAILBOX, sendAs: [FAX], ...(Object.keys(relayLimits).length > 0 ? { rateLimit: relayLimits } : {}) },
      { mailbox: RELAY2, sendAs: [SCANNER] },
    ],
  };
}

async function send(agent: TestAgent, from: string, to: string[] = ['you@contoso.com'], subject = 'x'): Promise<string> {
  const reply = await sendRaw(agent.address.port, from, to, `From: ${from}\r\nSubject: ${subject}\r\n\r\nbody\r\n`);
  return /queued as (\S+)$/.exec(reply)?.[1] ?? assert.fail(reply);
}

describe('a pool of two mailboxes, against the fake Exchange Online', () => {
  let rig: ExchangeOnlineRig;
  let agent: TestAgent | undefined;

  before(async () => {
    rig = await startExchangeOnlineRig({
      mailboxes: [RELAY_MAILBOX, RELAY2, 'you@contoso.com', 'ops@contoso.com', FAX],
      sendAs: { [RELAY_MAILBOX]: [FAX, UPS], [RELAY2]: [SCANNER, UPS] },
    });
  });
  afterEach(async () => {
    await agent?.dispose();
    agent = undefined;
  });
  after(async () => {
    await rig?.close();
  });

  const sentBy = (id: string) => rig.exo.messages.filter((m) => m.raw.includes(`${id}@`)).map((m) => m.auth.user);

  test("each device's sendAs selects its mailbox, other mail is spread over both, and the history names the mailbox", async () => {
    agent = await startTestAgent({ upstream: poolUpstream(rig) });
    const before = rig.exo.messages.length;
    const fax = await send(agent, FAX);
    const scan = await send(agent, SCANNER);
    const ups: string[] = [];
    for (let i = 0; i < 6; i++) ups.push(await send(agent, UPS));
    await rig.exo.waitForMessages(before + 8, 10_000);
    assert.deepEqual(sentBy(fax), [RELAY_MAILBOX]);
    assert.deepEqual(sentBy(scan), [RELAY2]);
    const upsMailboxes = new Set(ups.flatMap(sentBy));
    assert.deepEqual([...upsMailboxes].sort(), [RELAY_MAILBOX, RELAY2].sort(), 'the UPS alerts went out through both mailboxes');
    const history = spoolHistory(agent.spool, agent.config.spool.dir);
    const attempts = async (id: string) => (await history.read(id)).flatMap((e) => (e.type === 'attempt' ? [{ mailbox: e.mailbox, route: e.route }] : []));
    assert.deepEqual(await attempts(scan), [{ mailbox: RELAY2, route: `smtp 127.0.0.1:${rig.exo.port}` }]);
    assert.deepEqual(await attempts(fax), [{ mailbox: RELAY_MAILBOX, route: `smtp 127.0.0.1:${rig.exo.port}` }]);
  });

  test('one mailbox throttled (432 4.3.2) holds only the mail that must use it; the other keeps delivering', async () => {
    agent = await startTestAgent({ upstream: poolUpstream(rig), retry: { schedule: ['3s'], maxAge: '1h' } });
    const before = rig.exo.messages.length;
    rig.exo.failNextFor(RELAY_MAILBOX, 'data', THROTTLED);
    const firstFax = await send(agent, FAX, undefined, 'fax 1');
    await rig.exo.waitFor(() => rig.exo.errorReplies.some((r) => r.startsWith('432 4.3.2 STOREDRV')), 5_000, 'the 432 for relay@');
    const throttledAt = Date.now();
    const secondFax = await send(agent, FAX, undefined, 'fax 2');
    const scan = await send(agent, SCANNER);
    const ups: string[] = [];
    for (let i = 0; i < 4; i++) ups.push(await send(agent, UPS));
    await rig.exo.waitForMessages(before + 5, 2_500);
    assert.ok(Date.now() - throttledAt < 3_000, 'the scanner and the UPS went out while relay@ was paused');
    assert.deepEqual(sentBy(scan), [RELAY2]);
    assert.deepEqual(ups.flatMap(sentBy), [RELAY2, RELAY2, RELAY2, RELAY2], 'unclaimed mail moved to relay2@ while relay@ was paused');
    assert.deepEqual([...sentBy(firstFax), ...sentBy(secondFax)], [], 'the fax, which only relay@ may send, waits');
    assert.equal(agent.deliveryLoop.heldUntil, 0, 'not every mailbox is held');
    await rig.exo.waitForMessages(before + 7, 10_000);
    assert.deepEqual([...sentBy(firstFax), ...sentBy(secondFax)], [RELAY_MAILBOX, RELAY_MAILBOX], 'once the pause ended relay@ sent both faxes');
    assert.ok(agent.logs.text.includes('upstream is throttling the mailbox, holding its deliveries'));
  });

  test('a mailbox at its recipients per day passes mail to the other, waits for what only it may send, and remembers its count across a restart', async () => {
    const dir = await makeTempDir('smarthost-pool-');
    try {
      const upstream = poolUpstream(rig, { recipientsPerDay: 3 });
      agent = await startTestAgent({ upstream }, {}, dir);
      const before = rig.exo.messages.length;
      const fax = await send(agent, FAX, ['you@contoso.com', 'ops@contoso.com', FAX]);
      await rig.exo.waitForMessages(before + 1, 5_000);
      assert.deepEqual(sentBy(fax), [RELAY_MAILBOX]);
      // relay@ has used its 3 recipients: UPS mail goes through relay2@, a fax waits (queued, never refused).
      const ups = [await send(agent, UPS), await send(agent, UPS)];
      const waitingFax = await send(agent, FAX);
      await rig.exo.waitForMessages(before + 3, 5_000);
      assert.deepEqual(ups.flatMap(sentBy), [RELAY2, RELAY2]);
      await sleep(300);
      assert.deepEqual(sentBy(waitingFax), []);
      assert.deepEqual(await agent.spool.committedIds(), [waitingFax]);
      assert.match(agent.logs.text, /the mailbox reached its recipients per 24 hours/);
      await agent.stop();

      const saved = JSON.parse(await readFile(join(dir, 'spool', RECIPIENT_BUDGET_FILE), 'utf8')) as { mailboxes: Record<string, [number, number][]> };
      assert.equal(saved.mailboxes[RELAY_MAILBOX]?.reduce((sum, [, count]) => sum + count, 0), 3);
      assert.equal(saved.mailboxes[RELAY2]?.reduce((sum, [, count]) => sum + count, 0), 2);

      // Same spool after a restart: relay@ is still full, so the fax still waits.
      agent = await startTestAgent({ upstream }, {}, dir);
      await sleep(500);
      assert.deepEqual(sentBy(waitingFax), []);
      assert.deepEqual(await agent.spool.committedIds(), [waitingFax]);
      assert.match(agent.logs.text, /the mailbox reached its recipients per 24 hours/);
    } finally {
      await agent?.dispose();
      agent = undefined;
      await rm(dir, { recursive: true, force: true });
    }
  });

  test("an alert storm to one address waits for the recipient's messages per hour instead of bouncing", async () => {
    agent = await startTestAgent({ upstream: poolUpstream(rig, {}, { rateLimit: { perMinute: 1000, connections: 3, perRecipientPerHour: 2 } }) });
    const before = rig.exo.messages.length;
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push(await send(agent, UPS, ['ops@contoso.com'], `storm ${i}`));
    const other = await send(agent, UPS, ['you@contoso.com']);
    await rig.exo.waitForMessages(before + 3, 5_000);
    await sleep(300);
    assert.equal(rig.exo.messages.length, before + 3, 'two to ops@ and one to you@');
    assert.equal(sentBy(other).length, 1);
    assert.equal((await agent.spool.committedIds()).length, 1, 'the third to ops@ waits in the queue');
  });
});
