import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { envelopeTrailer, openFd } from '../../edge-agent/spool/spoolFile.ts';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startTestAgent, type TestAgent } from '../../testbed/helpers/agentHarness.ts';
import { HeldSubmitter } from './helpers/heldSubmitter.ts';
import { listDir } from './helpers/messageBytes.ts';
import { openSession, queuedId, quit, sendMessage } from './helpers/smtpSession.ts';
import { readOutboxMessage } from '../../testbed/helpers/relayTrace.ts';

const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');
const STORE_FAILED = '451 4.3.0 Could not store the message, try again later';

describe('durable spool: the 250 comes after the message is on disk', () => {
  let agent: TestAgent;
  const submitter = new HeldSubmitter();

  before(async () => {
    agent = await startTestAgent({ clients: [{ name: 'scanners', address: '127.0.0.1' }] }, { submitter });
  });

  after(async () => {
    submitter.release();
    await agent?.dispose();
  });

  test('DATA is answered "250 2.0.0 Ok: queued as <id>" with the body and its envelope already in the queue', async () => {
    const body = Buffer.from('From: scanner@contoso.com\r\nSubject: durable\r\n\r\npage 1\r\n', 'latin1');
    const client = await openSession(agent.address.port, { helo: 'MFP-2F.contoso.local' });
    const sentAt = Date.now();
    const reply = await sendMessage(client, 'scanner@contoso.com', ['alice@contoso.com', 'bob@fabrikam.com', 'carol@contoso.com'], body);
    const repliedAt = Date.now();
    const id = queuedId(reply);
    const queueDir = join(agent.config.spool.dir, 'queue');
    // The submitter never finishes, so what is here is what the 250 promised.
    assert.deepEqual(await listDir(queueDir), [`${id}.msg`], 'one file per message');
    const envelope = await agent.spool.readEnvelope(id);
    const stored = await agent.spool.readBody(envelope);
    assert.deepEqual(stored, body);
    // The file is the body, byte for byte, then the envelope: a person can read it with less.
    assert.deepEqual((await readFile(join(queueDir, `${id}.msg`))).subarray(0, body.length), body);
    assert.deepEqual(
      { ...envelope, receivedAt: undefined },
      {
        id,
        receivedAt: undefined,
        client: { name: 'scanners', ip: '127.0.0.1' },
        helo: 'mfp-2f.contoso.local',
        mailFrom: 'scanner@contoso.com',
        rcptTo: ['alice@contoso.com', 'bob@fabrikam.com', 'carol@contoso.com'],
        size: body.length,
        sha256: sha256(body),
      },
    );
    const receivedAt = Date.parse(envelope.receivedAt);
    // The ISO string keeps milliseconds, so the stamp lies between sending and the reply.
    assert.ok(receivedAt >= sentAt - 1 && receivedAt <= repliedAt, `receivedAt ${envelope.receivedAt}`);
    // Body, then exactly the envelope trailer: nothing else in the file.
    assert.equal((await stat(join(queueDir, `${id}.msg`))).size, envelope.size + envelopeTrailer(envelope).length);
    assert.deepEqual(await listDir(join(agent.config.spool.dir, 'tmp')), [], 'nothing left in tmp');
    await quit(client);
  });

  test('the null sender is stored as an empty MAIL FROM', async () => {
    const client = await openSession(agent.address.port);
    const id = queuedId(await sendMessage(client, '', ['alice@contoso.com'], 'Subject: bounce\r\n\r\nx\r\n'));
    const envelope = await agent.spool.readEnvelope(id);
    assert.equal(envelope.mailFrom, '');
    await quit(client);
  });
});

describe('durable spool: a failed write is answered 451 and leaves nothing behind', () => {
  let agent: TestAgent;
  let disk: 'full' | 'unopenable' | 'ok' = 'ok';

  before(async () => {
    agent = await startTestAgent(
      {},
      {
        spoolOptions: {
          openTempFile: (path) => {
            switch (disk) {
              case 'full':
                // /dev/full fails every write with ENOSPC, like a full disk.
                return openFd('/dev/full', 'w');
              case 'unopenable':
                return Promise.reject(Object.assign(new Error(`EMFILE: too many open files, open '${path}'`), { code: 'EMFILE' }));
              case 'ok':
                return openFd(path, 'wx');
            }
          },
        },
      },
    );
  });

  after(async () => {
    await agent?.dispose();
  });

  test('a full disk gets 451 4.3.0, keeps nothing, and the same connection can send once there is room', async () => {
    disk = 'full';
    const spool = agent.config.spool.dir;
    const client = await openSession(agent.address.port);
    const body = 'Subject: scan\r\n\r\n' + 'page\r\n'.repeat(5_000);
    assert.equal(await sendMessage(client, 'scanner@contoso.com', ['alice@contoso.com'], body), STORE_FAILED);
    assert.deepEqual(await listDir(join(spool, 'tmp')), []);
    assert.deepEqual(await listDir(join(spool, 'queue')), []);
    assert.ok(
      agent.logs.records().some((r) => r.msg === 'message refused' && r.reply === 451 && /ENOSPC/.test(String(r.err))),
      'the refusal is logged with its cause',
    );

    assert.equal(await client.command('RSET'), '250 Flushed');
    assert.equal(await sendMessage(client, 'scanner@contoso.com', ['alice@contoso.com'], body), STORE_FAILED, 'still full: refused again, in step');
    disk = 'ok';
    const id = queuedId(await sendMessage(client, 'scanner@contoso.com', ['alice@contoso.com'], body));
    await agent.deliveryLoop.whenIdle();
    assert.deepEqual((await readOutboxMessage(agent.config.outbox.dir, id)).toString('latin1'), body);
    await quit(client);
  });

  test('a temp file that cannot be opened gets 451 4.3.0 after the whole body was read, and the session stays in step', async () => {
    disk = 'unopenable';
    const client = await openSession(agent.address.port);
    // Larger than every stream buffer on the way, so the reply can only come once the rest was drained.
    const body = 'Subject: scan\r\n\r\n' + `${'p'.repeat(998)}\r\n`.repeat(400);
    assert.equal(await sendMessage(client, 'scanner@contoso.com', ['alice@contoso.com'], body), STORE_FAILED);
    assert.deepEqual(await listDir(join(agent.config.spool.dir, 'tmp')), []);
    disk = 'ok';
    queuedId(await sendMessage(client, 'scanner@contoso.com', ['alice@contoso.com'], 'Subject: next\r\n\r\nok\r\n'));
    await quit(client);
  });
});

describe('durable spool: a write that fails after the temp file exists', () => {
  let agent: TestAgent;

  before(async () => {
    agent = await startTestAgent(
      {},
      {
        spoolOptions: {
          // The temp file is created, then opened read-only: the first write fails with EBADF.
          openTempFile: async (path) => {
            await writeFile(path, '', { flag: 'wx' });
            return openFd(path, 'r');
          },
        },
      },
    );
  });

  after(async () => {
    await agent?.dispose();
  });

  test('is answered 451 4.3.0 and the temp file is removed', async () => {
    const client = await openSession(agent.address.port);
    assert.equal(await sendMessage(client, 'scanner@contoso.com', ['alice@contoso.com'], 'Subject: x\r\n\r\nbody\r\n'), STORE_FAILED);
    assert.deepEqual(await listDir(join(agent.config.spool.dir, 'tmp')), []);
    assert.deepEqual(await listDir(join(agent.config.spool.dir, 'queue')), []);
    await quit(client);
  });
});

describe('spool.maxBytes', () => {
  let agent: TestAgent;
  const submitter = new HeldSubmitter();

  before(async () => {
    agent = await startTestAgent({ spool: { maxBytes: 100 } }, { submitter });
  });

  after(async () => {
    submitter.release();
    await agent?.dispose();
  });

  test('once queued bodies reach it, MAIL FROM is refused with 452 4.3.1 and nothing queued is dropped', async () => {
    const client = await openSession(agent.address.port);
    const id = queuedId(await sendMessage(client, 'scanner@contoso.com', ['alice@contoso.com'], `Subject: big\r\n\r\n${'x'.repeat(200)}\r\n`));
    assert.equal(await client.command('MAIL FROM:<scanner@contoso.com>'), '452 4.3.1 Insufficient system storage, try again later');
    assert.deepEqual(await listDir(join(agent.config.spool.dir, 'queue')), [`${id}.msg`]);
    await quit(client);
  });
});
