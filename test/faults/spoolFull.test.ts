import assert from 'node:assert/strict';
import { openFd } from '../../edge-agent/spool/spoolFile.ts';
import { mkdir, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, test } from 'node:test';
import { makeTempDir, startTestAgent, type TestAgent } from '../../testbed/helpers/agentHarness.ts';
import { startExchangeOnlineRig, type ExchangeOnlineRig } from '../../testbed/helpers/exchangeOnlineRig.ts';
import { pollUntil } from '../../testbed/helpers/pollUntil.ts';
import { assertDeliveredOnce } from './assertDeliveredOnce.ts';
import { sendAsDevice, type DeviceSend } from './faultDevice.ts';
import { mountSmallFilesystem, type SmallFilesystem } from './smallFilesystem.ts';

const RETRY = { schedule: ['100ms', '200ms'], maxAge: '1h' };

describe('fault: no room in the spool', () => {
  let rig: ExchangeOnlineRig | undefined;
  let agent: TestAgent | undefined;
  let disk: SmallFilesystem | undefined;
  let dir: string | undefined;

  afterEach(async () => {
    await agent?.dispose();
    await rig?.close();
    await disk?.unmount();
    if (dir) await rm(dir, { recursive: true, force: true });
    agent = rig = disk = dir = undefined;
  });

  test('a full disk: devices get 451 4.3.0, accepted mail is kept, and mail flows again once space is freed, without a restart', async (t) => {
    dir = await makeTempDir('smarthost-fault-disk-');
    const mountpoint = join(dir, 'small');
    await mkdir(mountpoint);
    disk = await mountSmallFilesystem(mountpoint, '2m');
    // Without permission to mount, a full disk is simulated where the body is written: /dev/full.
    let simulatedFull = false;
    const openTempFile = (path: string): Promise<number> => (simulatedFull ? openFd('/dev/full', 'w') : openFd(path, 'wx'));
    t.diagnostic(disk ? 'spool on a 2 MiB tmpfs' : 'mount not permitted: spool temp files on /dev/full');

    rig = await startExchangeOnlineRig();
    // Upstream down: what was accepted before the disk filled stays in the spool throughout.
    rig.exo.setDown(true);
    const spoolDir = join(disk ? mountpoint : dir, 'spool');
    agent = await startTestAgent({ upstream: rig.upstream(), retry: RETRY, spool: { dir: spoolDir } }, disk ? {} : { spoolOptions: { openTempFile } }, dir);

    const sends: DeviceSend[] = [];
    for (let i = 0; i < 2; i++) sends.push(await sendAsDevice(agent.address.port, `before full ${i}`, 30_000));
    for (const send of sends) assert.equal(send.code, 250, `${send.subject}: ${send.reply}`);

    if (disk) await disk.fill(0);
    else simulatedFull = true;
    const refused: DeviceSend[] = [];
    for (let i = 0; i < 3; i++) refused.push(await sendAsDevice(agent.address.port, `disk full ${i}`, 100_000));
    for (const send of refused) assert.match(send.reply, /^451 4\.3\.0 /, `${send.subject} is refused as not stored`);
    if (disk) {
      // Recording a failed attempt needs room too; the message stays queued and is tried again.
      await pollUntil(() => agent!.logs.records().some((r) => r.msg === 'could not record a delivery outcome'), 20_000, 'a delivery outcome that could not be written');
    }
    assert.deepEqual(await readdir(join(spoolDir, 'tmp')), [], 'refused bodies are not left behind');
    assert.equal((await agent.spool.committedIds()).length, 2, 'the accepted messages are still queued');

    if (disk) await disk.free();
    else simulatedFull = false;
    for (let i = 0; i < 2; i++) sends.push(await sendAsDevice(agent.address.port, `after free ${i}`, 100_000));
    assert.deepEqual(sends.slice(2).map((s) => s.code), [250, 250], 'accepted again once there is room');

    rig.exo.setDown(false);
    await rig.exo.waitForMessages(sends.length, 30_000);
    await agent.deliveryLoop.whenIdle();
    assertDeliveredOnce(rig.exo.messages, [...sends, ...refused]);
    assert.deepEqual(await agent.spool.committedIds(), []);
    assert.deepEqual(await agent.spool.listFailed(), []);
  });

  test('spool.maxBytes reached: devices get 452 4.3.1 at MAIL FROM until deliveries make room', async () => {
    rig = await startExchangeOnlineRig();
    rig.exo.setDown(true);
    agent = await startTestAgent({ upstream: rig.upstream(), retry: RETRY, spool: { maxBytes: '100KB' } });

    const sends: DeviceSend[] = [];
    for (let i = 0; i < 4; i++) sends.push(await sendAsDevice(agent.address.port, `within limit ${i}`, 30_000));
    assert.deepEqual(
      sends.map((s) => s.code),
      [250, 250, 250, 250],
    );
    const refused = await sendAsDevice(agent.address.port, 'over the limit', 30_000);
    assert.match(refused.reply, /^452 4\.3\.1 /);

    rig.exo.setDown(false);
    await rig.exo.waitForMessages(sends.length, 30_000);
    await agent.deliveryLoop.whenIdle();
    sends.push(await sendAsDevice(agent.address.port, 'room again', 30_000));
    assert.equal(sends.at(-1)?.code, 250, 'deliveries made room');
    await rig.exo.waitForMessages(sends.length, 15_000);
    await agent.deliveryLoop.whenIdle();
    assertDeliveredOnce(rig.exo.messages, [...sends, refused]);
    assert.deepEqual(await agent.spool.committedIds(), []);
  });
});
