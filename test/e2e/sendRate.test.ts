import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import { sendRaw, startTestAgent, type TestAgent } from '../../testbed/helpers/agentHarness.ts';
import { startExchangeOnlineRig, type ExchangeOnlineRig } from '../../testbed/helpers/exchangeOnlineRig.ts';

describe("the upstream's per-minute limit", () => {
  let rig: ExchangeOnlineRig;
  let agent: TestAgent | undefined;

  before(async () => {
    rig = await startExchangeOnlineRig();
    agent = await startTestAgent({ upstream: rig.upstream({ rateLimit: { perMinute: 2, connections: 3 } }) });
  });

  after(async () => {
    await agent?.dispose();
    await rig?.close();
  });

  test('starts no more deliveries than perMinute allows; the rest wait queued, and a shutdown does not wait for them', async () => {
    const running = agent as TestAgent;
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      ids.push(/queued as (\S+)$/.exec(await sendRaw(running.address.port, 'scanner@contoso.com', ['you@contoso.com'], `Subject: ${i}\r\n\r\nx\r\n`))?.[1] ?? '');
    }
    await rig.exo.waitFor(() => rig.exo.messages.length >= 2, 10_000, 'the first two deliveries');
    // Three connections are free: without the limit the other three would go within milliseconds.
    await sleep(500);
    assert.equal(rig.exo.messages.length, 2);
    assert.equal((await running.spool.committedIds()).length, 3, 'the other three wait in the spool');

    const started = performance.now();
    await running.stop(30_000);
    assert.ok(performance.now() - started < 5_000, `stopped in ${(performance.now() - started).toFixed(0)} ms: nothing was waiting for the rate window`);
    assert.equal(rig.exo.messages.length, 2);
  });
});
