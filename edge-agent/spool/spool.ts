import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, rm, stat, unlink, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { messageEnvelopeSchema, type MessageEnvelope } from '../../contract/messageEnvelope.ts';
import { SmtpReplyError } from '../smtpReplyError.ts';
import { DirectorySync } from './directorySync.ts';
import { SpoolFullError, SpoolWriteError } from './errors.ts';
import { newMessageId } from './messageId.ts';

/** What the intake knows before the body arrives. */
export type EnvelopeDraft = Omit<MessageEnvelope, 'id' | 'receivedAt' | 'size' | 'sha256'>;

/** Delivery progress, kept beside a queued message so a restart neither loses nor repeats work. */
export interface DeliveryState {
  attempts: number;
  nextAttemptAt?: string;
  lastError?: string;
  /** Recipients still to deliver; absent means all of the envelope's. */
  pendingRcpts?: string[];
  deliveredRcpts: string[];
  rejectedRcpts: { rcpt: string; reply: string }[];
}

export interface FailureRecord {
  failedAt: string;
  reason: string;
  reply?: string;
  operatorAction?: string;
  state: DeliveryState;
}

export interface SpoolOptions {
  dir: string;
  /** Refuse new mail with 452 once queued bodies reach this many bytes. */
  maxBytes?: number;
  /** Opens the temp file for a body; tests pass one that fails like a full disk. */
  openTempFile?: (path: string) => Promise<FileHandle>;
}

const EML = '.eml';
const ENVELOPE = '.json';
const STATE = '.state.json';
const FAILURE = '.failure.json';

/**
 * The durable store between intake and delivery. A message is committed when its body and
 * envelope are fsync'd and renamed into queue/ and that directory is fsync'd: only then does the
 * device get its 250. Files in tmp/ are never acknowledged and are removed on start.
 */
export class Spool {
  readonly queueDir: string;
  readonly failedDir: string;
  private readonly tmpDir: string;
  private readonly queueSync: DirectorySync;
  private readonly failedSync: DirectorySync;
  private queuedBytes = 0;
  private readonly openTempFile: (path: string) => Promise<FileHandle>;

  constructor(private readonly options: SpoolOptions) {
    this.queueDir = join(options.dir, 'queue');
    this.failedDir = join(options.dir, 'failed');
    this.tmpDir = join(options.dir, 'tmp');
    this.queueSync = new DirectorySync(this.queueDir);
    this.failedSync = new DirectorySync(this.failedDir);
    this.openTempFile = options.openTempFile ?? ((path) => open(path, 'wx'));
  }

  /** Creates the folders, drops unacknowledged leftovers, and returns the queued envelopes, oldest first. */
  async open(): Promise<MessageEnvelope[]> {
    await Promise.all([this.queueDir, this.failedDir, this.tmpDir].map((dir) => mkdir(dir, { recursive: true })));
    await rm(this.tmpDir, { recursive: true, force: true });
    await mkdir(this.tmpDir, { recursive: true });
    const names = await readdir(this.queueDir);
    const committed = new Set(names.filter((n) => n.endsWith(ENVELOPE) && !n.endsWith(STATE)).map((n) => n.slice(0, -ENVELOPE.length)));
    const envelopes: MessageEnvelope[] = [];
    for (const name of names) {
      // A body without its envelope was cut off before the commit, so its client never saw a 250.
      // A state without an envelope is what a delivered message or a cut-short resend leaves.
      const orphanBody = name.endsWith(EML) && !committed.has(name.slice(0, -EML.length));
      const orphanState = name.endsWith(STATE) && !committed.has(name.slice(0, -STATE.length));
      if (orphanBody || orphanState) {
        await rm(join(this.queueDir, name), { force: true });
      }
    }
    for (const id of [...committed].sort()) {
      if (!names.includes(id + EML) && (await exists(join(this.failedDir, id + EML)))) {
        // A move to or from failed/ was cut short after the body moved: failed/ holds the message.
        await rm(join(this.queueDir, id + ENVELOPE), { force: true });
        await rm(join(this.queueDir, id + STATE), { force: true });
        continue;
      }
      envelopes.push(await this.readEnvelope(id));
    }
    this.queuedBytes = envelopes.reduce((sum, e) => sum + e.size, 0);
    return envelopes;
  }

  /** Refuses early (at MAIL FROM) when the spool is full. */
  checkCapacity(): void {
    if (this.options.maxBytes !== undefined && this.queuedBytes >= this.options.maxBytes) {
      throw new SpoolFullError();
    }
  }

  /**
   * Streams a body to disk and commits it with its envelope. Throws SpoolWriteError (451) when
   * anything fails, after removing what was written. `openBody` is called once the temp file is
   * open, so nothing flows (and nothing can fail unobserved) before the pipeline is in place.
   */
  async accept(draft: EnvelopeDraft, openBody: () => Readable, receivedAt = new Date()): Promise<MessageEnvelope> {
    const id = newMessageId(receivedAt);
    const tmpBody = join(this.tmpDir, id + EML);
    const tmpEnvelope = join(this.tmpDir, id + ENVELOPE);
    const hash = createHash('sha256');
    let size = 0;
    try {
      const handle = await this.openTempFile(tmpBody);
      const measure = new Transform({
        transform(chunk: Buffer, _enc, done) {
          hash.update(chunk);
          size += chunk.length;
          done(null, chunk);
        },
      });
      // flush: fsync before the stream closes the handle; pipeline resolves only after that close.
      // (A FileHandle stream with autoClose off leaves handle.close() hanging on Node 20.)
      await pipeline(openBody(), measure, handle.createWriteStream({ flush: true }));
      const envelope: MessageEnvelope = { ...draft, id, receivedAt: receivedAt.toISOString(), size, sha256: hash.digest('hex') };
      await writeDurably(tmpEnvelope, JSON.stringify(envelope));
      await rename(tmpBody, join(this.queueDir, id + EML));
      await rename(tmpEnvelope, join(this.queueDir, id + ENVELOPE));
      await this.queueSync.sync();
      this.queuedBytes += size;
      return envelope;
    } catch (error) {
      await Promise.all(
        [tmpBody, tmpEnvelope, join(this.queueDir, id + EML), join(this.queueDir, id + ENVELOPE)].map((p) => rm(p, { force: true })),
      );
      // A refusal decided while reading (size, line ends) keeps its own reply; anything else is storage.
      throw error instanceof SmtpReplyError ? error : new SpoolWriteError(error);
    }
  }

  bodyPath(id: string): string {
    return join(this.queueDir, id + EML);
  }

  openBody(id: string): Readable {
    return createReadStream(this.bodyPath(id));
  }

  async readEnvelope(id: string): Promise<MessageEnvelope> {
    return messageEnvelopeSchema.parse(JSON.parse(await readFile(join(this.queueDir, id + ENVELOPE), 'utf8')));
  }

  async readState(id: string): Promise<DeliveryState | undefined> {
    try {
      return JSON.parse(await readFile(join(this.queueDir, id + STATE), 'utf8')) as DeliveryState;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
        return undefined;
      }
      throw error;
    }
  }

  /** Durable, because a lost state after a partial delivery would resend to accepted recipients. */
  async writeState(id: string, state: DeliveryState): Promise<void> {
    const tmp = join(this.tmpDir, `${id}.${process.hrtime.bigint()}${STATE}`);
    await writeDurably(tmp, JSON.stringify(state));
    await rename(tmp, join(this.queueDir, id + STATE));
    await this.queueSync.sync();
  }

  /** Removes a delivered message. */
  async remove(envelope: MessageEnvelope): Promise<void> {
    // The envelope goes first: a body left without one is cleaned up on the next start.
    await removeIfPresent(join(this.queueDir, envelope.id + ENVELOPE));
    await removeIfPresent(join(this.queueDir, envelope.id + STATE));
    await removeIfPresent(join(this.queueDir, envelope.id + EML));
    await this.queueSync.sync();
    this.queuedBytes -= envelope.size;
  }

  /** Moves a message that will not be delivered to failed/, with the reason. Nothing is deleted. */
  async moveToFailed(envelope: MessageEnvelope, record: FailureRecord): Promise<void> {
    const id = envelope.id;
    // Record and envelope land first, the body last: whatever a crash cuts short, open() finds
    // the message whole in one of the two folders.
    await writeDurably(join(this.failedDir, id + FAILURE), JSON.stringify(record, null, 2));
    await writeDurably(join(this.failedDir, id + ENVELOPE), JSON.stringify(envelope));
    await this.failedSync.sync();
    await rename(join(this.queueDir, id + EML), join(this.failedDir, id + EML));
    await this.failedSync.sync();
    await rm(join(this.queueDir, id + ENVELOPE), { force: true });
    await rm(join(this.queueDir, id + STATE), { force: true });
    await this.queueSync.sync();
    this.queuedBytes -= envelope.size;
  }

  /** Ids of messages whose body and envelope are both in the queue (what a running worker may take). */
  async committedIds(): Promise<string[]> {
    const names = new Set(await readdir(this.queueDir));
    return [...names]
      .filter((n) => n.endsWith(ENVELOPE) && !n.endsWith(STATE))
      .map((n) => n.slice(0, -ENVELOPE.length))
      .filter((id) => names.has(id + EML))
      .sort();
  }

  /** Lists queued messages with their delivery state, oldest first, without changing anything. */
  async listQueued(): Promise<{ envelope: MessageEnvelope; state: DeliveryState | undefined }[]> {
    const names = await readdir(this.queueDir).catch(() => [] as string[]);
    const ids = names.filter((n) => n.endsWith(ENVELOPE) && !n.endsWith(STATE)).map((n) => n.slice(0, -ENVELOPE.length)).sort();
    const out: { envelope: MessageEnvelope; state: DeliveryState | undefined }[] = [];
    for (const id of ids) {
      out.push({ envelope: await this.readEnvelope(id), state: await this.readState(id) });
    }
    return out;
  }

  /** Lists failed messages with their failure records, oldest first. */
  async listFailed(): Promise<{ envelope: MessageEnvelope; failure: FailureRecord }[]> {
    const names = (await readdir(this.failedDir).catch(() => [] as string[])).filter((n) => n.endsWith(FAILURE)).sort();
    const out: { envelope: MessageEnvelope; failure: FailureRecord }[] = [];
    for (const name of names) {
      const id = name.slice(0, -FAILURE.length);
      const envelope = messageEnvelopeSchema.parse(JSON.parse(await readFile(join(this.failedDir, id + ENVELOPE), 'utf8')));
      const failure = JSON.parse(await readFile(join(this.failedDir, name), 'utf8')) as FailureRecord;
      out.push({ envelope, failure });
    }
    return out;
  }

  /** Puts a failed message back in the queue for a fresh set of attempts (after the operator fixed the cause). */
  async requeueFailed(id: string): Promise<MessageEnvelope> {
    if (!/^[A-Za-z0-9_-]{8,64}$/.test(id)) {
      throw new RangeError(`'${id}' is not a message id`);
    }
    const envelope = messageEnvelopeSchema.parse(JSON.parse(await readFile(join(this.failedDir, id + ENVELOPE), 'utf8')));
    const failure = JSON.parse(await readFile(join(this.failedDir, id + FAILURE), 'utf8')) as FailureRecord;
    const size = (await stat(join(this.failedDir, id + EML))).size;
    // A fresh set of attempts, but only for the recipients that do not have the message yet.
    const state: DeliveryState = {
      attempts: 0,
      pendingRcpts: failure.state.pendingRcpts,
      deliveredRcpts: failure.state.deliveredRcpts,
      rejectedRcpts: [],
    };
    await writeDurably(join(this.queueDir, id + STATE), JSON.stringify(state));
    // Envelope first: until the body follows, open() treats the message as still failed.
    await writeDurably(join(this.queueDir, id + ENVELOPE), JSON.stringify(envelope));
    await this.queueSync.sync();
    await rename(join(this.failedDir, id + EML), join(this.queueDir, id + EML));
    await this.queueSync.sync();
    await rm(join(this.failedDir, id + FAILURE), { force: true });
    await rm(join(this.failedDir, id + ENVELOPE), { force: true });
    await this.failedSync.sync();
    this.queuedBytes += size;
    return envelope;
  }

  get bytesQueued(): number {
    return this.queuedBytes;
  }
}

/** unlink without fs.rm's extra lstat: this runs for every delivered message. */
async function removeIfPresent(path: string): Promise<void> {
  try {
    await unlink(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw error;
    }
  }
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

async function writeDurably(path: string, text: string): Promise<void> {
  const handle = await open(path, 'w');
  try {
    await handle.writeFile(text);
    await handle.sync();
  } catch (error) {
    // A full disk leaves a truncated file behind: remove it rather than leave a broken record
    // (or one more file in tmp/ for every outcome that could not be recorded).
    await handle.close().catch(() => undefined);
    await rm(path, { force: true });
    throw error;
  }
  await handle.close();
}
