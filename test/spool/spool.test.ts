import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rm, writeFile, truncate } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { text } from 'node:stream/consumers';
import { after, describe, test } from 'node:test';
import type { MessageEnvelope } from '../../contract/messageEnvelope.ts';
import { SpoolWriteError } from '../../edge-agent/spool/errors.ts';
import { Spool, type EnvelopeDraft } from '../../edge-agent/spool/spool.ts';
import { makeTempDir } from '../../testbed/helpers/agentHarness.ts';

const DRAFT: EnvelopeDraft = {
  client: { name: 'scanners', ip: '192.0.2.7' },
  helo: 'mfp.local',
  mailFrom: 'scanner@contoso.com',
  rcptTo: ['alice@contoso.com'],
};
const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');
const dirs: string[] = [];

async function freshSpool(options: { writeChunkBytes?: number } = {}): Promise<{ spool: Spool; dir: string }> {
  const dir = await makeTempDir('smarthost-spool-');
  dirs.push(dir);
  const spool = new Spool({ dir, ...options });
  await spool.open();
  return { spool, dir };
}

/** A body arriving in pieces, like smtp-server's DATA stream. */
function pieces(body: Buffer, size: number): Readable {
  const parts: Buffer[] = [];
  for (let at = 0; at < body.length; at += size) parts.push(body.subarray(at, at + size));
  return Readable.from(parts);
}

after(async () => {
  await Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true })));
});

describe('spool: one file per message', () => {
  test('a small body is one file in queue/: the body byte for byte, then its envelope, read back the same', async () => {
    const { spool, dir } = await freshSpool();
    const body = Buffer.from('Subject: scan\r\n\r\npage 1\r\n');
    const envelope = await spool.accept(DRAFT, () => pieces(body, 7));
    assert.deepEqual(await readdir(join(dir, 'queue')), [`${envelope.id}.msg`]);
    assert.deepEqual(await readdir(join(dir, 'tmp')), []);
    assert.equal(envelope.size, body.length);
    assert.equal(envelope.sha256, sha256(body));
    assert.deepEqual(await spool.readEnvelope(envelope.id), envelope);
    assert.deepEqual(await spool.readBody(envelope), body);
    assert.equal(await text(spool.openBody(envelope)), body.toString());
    assert.equal(spool.bytesQueued, body.length);
  });

  test('a body larger than the write size is written in pieces and read back whole', async () => {
    const { spool } = await freshSpool({ writeChunkBytes: 64 * 1024 });
    const body = randomBytes(1024 * 1024 + 13);
    const envelope = await spool.accept(DRAFT, () => pieces(body, 10_000));
    assert.equal(envelope.sha256, sha256(body));
    assert.deepEqual(await spool.readBody(envelope), body);
    const streamed: Buffer[] = [];
    for await (const chunk of spool.openBody(envelope)) streamed.push(chunk as Buffer);
    assert.deepEqual(Buffer.concat(streamed), body);
  });

  test('the SHA-256 is right whether the body was held whole or written in pieces', async () => {
    const { spool } = await freshSpool();
    // 300 KiB passes the write size (256 KiB).
    for (const size of [1, 40 * 1024, 200 * 1024, 300 * 1024]) {
      for (const piece of [size, 4096]) {
        const body = randomBytes(size);
        const envelope = await spool.accept(DRAFT, () => pieces(body, piece));
        assert.equal(envelope.sha256, sha256(body), `${size} bytes in pieces of ${piece}`);
        assert.deepEqual(await spool.readBody(envelope), body);
      }
    }
  });

  test('an empty body is stored and read back empty', async () => {
    const { spool } = await freshSpool();
    const envelope = await spool.accept(DRAFT, () => Readable.from([]));
    assert.equal(envelope.size, 0);
    assert.equal(envelope.sha256, sha256(Buffer.alloc(0)));
    assert.deepEqual(await spool.readBody(envelope), Buffer.alloc(0));
    assert.equal(await text(spool.openBody(envelope)), '');
  });

  test('a body that ends with something that looks like a footer does not confuse the envelope', async () => {
    const { spool } = await freshSpool();
    const fake = Buffer.from('{"id":"forged"}\n#smarthost-spool-1 0000000015\n');
    const envelope = await spool.accept(DRAFT, () => Readable.from([fake]));
    assert.deepEqual(await spool.readEnvelope(envelope.id), envelope);
  });

  test('a body stream that fails after part was written is 451 4.3.0 with the cause kept, and leaves nothing behind', async () => {
    const { spool, dir } = await freshSpool({ writeChunkBytes: 1024 });
    const failing = new Readable({
      read() {
        this.push(Buffer.alloc(4096, 'x'));
        this.destroy(new Error('client went away'));
      },
    });
    await assert.rejects(spool.accept(DRAFT, () => failing), (error: unknown) => {
      assert.ok(error instanceof SpoolWriteError);
      assert.equal(error.reply, '451 4.3.0 Could not store the message, try again later');
      assert.equal((error.cause as Error).message, 'client went away');
      return true;
    });
    assert.deepEqual(await readdir(join(dir, 'tmp')), []);
    assert.deepEqual(await readdir(join(dir, 'queue')), []);
    assert.equal(spool.bytesQueued, 0);
  });

  test('a truncated file in queue/ is refused with the file named, not read as a message', async () => {
    const { spool, dir } = await freshSpool();
    const envelope = await spool.accept(DRAFT, () => Readable.from([Buffer.from('Subject: x\r\n\r\nbody\r\n')]));
    const path = join(dir, 'queue', `${envelope.id}.msg`);
    await truncate(path, envelope.size + 5);
    await assert.rejects(spool.readEnvelope(envelope.id), (error: Error) => error.message.includes(path) && /not a smarthost spool file/.test(error.message));
  });
});

describe('spool: what a restart finds', () => {
  test('queued messages come back oldest first with their bytes counted; orphans are cleaned up', async () => {
    const { spool, dir } = await freshSpool();
    const a = await spool.accept(DRAFT, () => Readable.from([Buffer.from('a')]), new Date('2026-11-27T10:00:00Z'));
    const b = await spool.accept(DRAFT, () => Readable.from([Buffer.from('bb')]), new Date('2026-11-27T10:00:01Z'));
    await writeFile(join(dir, 'tmp', 'half-written.msg'), 'partial');
    await writeFile(join(dir, 'queue', 'gone00000000000000.state.json'), '{}');
    await writeFile(join(dir, 'failed', 'gone00000000000000.failure.json'), '{}');
    const reopened = new Spool({ dir });
    assert.deepEqual(await reopened.open(), [a, b]);
    assert.equal(reopened.bytesQueued, 3);
    assert.deepEqual(await readdir(join(dir, 'tmp')), []);
    assert.deepEqual((await readdir(join(dir, 'queue'))).sort(), [`${a.id}.msg`, `${b.id}.msg`]);
    assert.deepEqual(await readdir(join(dir, 'failed')), []);
  });

  test('a failed message moves whole to failed/, is listed with its record, and comes back with its progress', async () => {
    const { spool, dir } = await freshSpool();
    const envelope = await spool.accept({ ...DRAFT, rcptTo: ['a@contoso.com', 'b@contoso.com'] }, () => Readable.from([Buffer.from('body')]));
    await spool.writeState(envelope.id, { attempts: 3, deliveredRcpts: ['a@contoso.com'], rejectedRcpts: [], pendingRcpts: ['b@contoso.com'] });
    await spool.moveToFailed(envelope, {
      failedAt: '2026-11-28T00:00:00Z',
      reason: 'mailbox full',
      state: { attempts: 3, deliveredRcpts: ['a@contoso.com'], rejectedRcpts: [], pendingRcpts: ['b@contoso.com'] },
    });
    assert.deepEqual(await readdir(join(dir, 'queue')), []);
    assert.equal(spool.bytesQueued, 0);
    const [failed] = await spool.listFailed();
    assert.deepEqual(failed?.envelope, envelope);
    assert.equal(failed?.failure.reason, 'mailbox full');

    await spool.requeueFailed(envelope.id);
    assert.deepEqual(await readdir(join(dir, 'failed')), []);
    assert.deepEqual(await spool.listQueued(), [
      { envelope, state: { attempts: 0, deliveredRcpts: ['a@contoso.com'], rejectedRcpts: [], pendingRcpts: ['b@contoso.com'] } },
    ]);
    assert.equal(spool.bytesQueued, 4);
  });

  test('a spool in the earlier two-file layout is converted on start and nothing acknowledged is lost', async () => {
    const dir = await makeTempDir('smarthost-spool-');
    dirs.push(dir);
    const queue = join(dir, 'queue');
    const failed = join(dir, 'failed');
    await mkdir(queue, { recursive: true });
    await mkdir(failed, { recursive: true });
    const legacy = (id: string, body: string): MessageEnvelope => ({
      ...DRAFT,
      id,
      receivedAt: '2026-11-27T09:00:00.000Z',
      size: Buffer.byteLength(body),
      sha256: sha256(Buffer.from(body)),
    });
    const queued = legacy('00queued0000000000', 'queued body');
    const stopped = legacy('01stopped000000000', 'cut off');
    const given = legacy('02failed0000000000', 'failed body');
    await writeFile(join(queue, `${queued.id}.eml`), 'queued body');
    await writeFile(join(queue, `${queued.id}.json`), JSON.stringify(queued));
    await writeFile(join(queue, `${queued.id}.state.json`), JSON.stringify({ attempts: 2, deliveredRcpts: [], rejectedRcpts: [] }));
    // A body without its envelope was never acknowledged.
    await writeFile(join(queue, `${stopped.id}.eml`), 'cut off');
    await writeFile(join(failed, `${given.id}.eml`), 'failed body');
    await writeFile(join(failed, `${given.id}.json`), JSON.stringify(given));
    await writeFile(join(failed, `${given.id}.failure.json`), JSON.stringify({ failedAt: 'x', reason: 'r', state: { attempts: 1, deliveredRcpts: [], rejectedRcpts: [] } }));

    const spool = new Spool({ dir });
    assert.deepEqual(await spool.open(), [queued]);
    assert.deepEqual((await readdir(queue)).sort(), [`${queued.id}.msg`, `${queued.id}.state.json`]);
    assert.equal((await spool.readState(queued.id))?.attempts, 2);
    assert.deepEqual(await spool.readBody(queued), Buffer.from('queued body'));
    assert.deepEqual((await readdir(failed)).sort(), [`${given.id}.failure.json`, `${given.id}.msg`]);
    assert.deepEqual((await spool.listFailed()).map((f) => f.envelope), [given]);
    assert.equal((await readFile(join(failed, `${given.id}.msg`))).subarray(0, given.size).toString(), 'failed body');
  });
});

/** Uncaught exceptions raised while `run` goes on and for a few turns of the event loop after it. */
async function uncaughtDuring(run: () => Promise<void>): Promise<Error[]> {
  const seen: Error[] = [];
  const listener = (error: Error) => seen.push(error);
  process.on('uncaughtException', listener);
  try {
    await run();
    for (let i = 0; i < 5; i++) await new Promise((resolve) => setTimeout(resolve, 10));
  } finally {
    process.off('uncaughtException', listener);
  }
  return seen;
}

describe('spool: a message file that goes while it is read', () => {
  test('findMessage opens the file first: its body reads whole after the file is removed, and one dropped unread raises nothing', async () => {
    const { spool, dir } = await freshSpool();
    const body = Buffer.from('Subject: scan\r\n\r\npage 1\r\n');
    const envelope = await spool.accept(DRAFT, () => Readable.from([body]));
    const seen = await uncaughtDuring(async () => {
      const read = await spool.findMessage(envelope.id);
      const dropped = await spool.findMessage(envelope.id);
      // What the delivery loop does once the message is delivered (or a console delete).
      await rm(join(dir, 'queue', `${envelope.id}.msg`));
      // Before the fix the stream opened its path only now: ENOENT, and on a destroyed stream nobody listened.
      dropped?.body.destroy();
      assert.equal(await text(read?.body as Readable), body.toString());
    });
    assert.deepEqual(seen.map(String), []);
    assert.equal(await spool.findMessage(envelope.id), undefined);
    assert.equal(await spool.locateMessage(envelope.id), undefined);
  });

  test('a message removed while the queue or the failed area is listed is left out, not an error', async () => {
    const { spool, dir } = await freshSpool();
    const kept = await spool.accept(DRAFT, () => Readable.from([Buffer.from('kept\r\n')]));
    const gone = await spool.accept(DRAFT, () => Readable.from([Buffer.from('gone\r\n')]));
    const realRead = spool.readEnvelope.bind(spool);
    // Listed, then delivered before its envelope is read.
    spool.readEnvelope = async (id) => {
      if (id === gone.id) await rm(join(dir, 'queue', `${gone.id}.msg`));
      return realRead(id);
    };
    assert.deepEqual((await spool.listQueued()).map((q) => q.envelope.id), [kept.id]);
    assert.deepEqual(await spool.locateMessage(kept.id), { envelope: kept, where: 'queue' });
  });
});
