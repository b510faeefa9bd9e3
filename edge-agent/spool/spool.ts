import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, rm, unlink, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { messageEnvelopeSchema, type MessageEnvelope } from '../../contract/messageEnvelope.ts';
import { SmtpReplyError } from '../smtpReplyError.ts';
import { DirectorySync } from './directorySync.ts';
import { SpoolFullError, SpoolWriteError } from './errors.ts';
import { newMessageId } from './messageId.ts';
import { closeFd, envelopeTrailer, fsyncFd, openFd, readEnvelopeFrom, writeAll } from './spoolFile.ts';

/** What the intake knows before the body arrives. */
export type EnvelopeDraft = Omit<MessageEnvelope, 'id' | 'receivedAt' | 'size' | 'sha256' | 'headerMessageId'>;

/** What the intake learnt while the body went by, asked once it is all in. */
export interface BodyFacts {
  headerMessageId(): string | undefined;
}

/** Delivery progress, kept beside a queued message so a restart neither loses nor repeats work. */
export interface DeliveryState {
  attempts: number;
  nextAttemptAt?: string;
  lastError?: string;
  /** What the operator must change, when the last attempt was held for them (a config failure). */
  operatorAction?: string;
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
  /** Opens (creates) the temp file for a body and returns its descriptor; tests pass one that fails like a full disk. */
  openTempFile?: (path: string) => Promise<number>;
  /**
   * Bodies up to this size are held in memory and written with one call; larger ones are written
   * in pieces of this size as they arrive. Bounds the memory of a connection.
   */
  writeChunkBytes?: number;
}

const MESSAGE = '.msg';
const STATE = '.state.json';
const FAILURE = '.failure.json';
// The layout before one file per message; open() converts what it finds.
const LEGACY_BODY = '.eml';
const LEGACY_ENVELOPE = '.json';

/**
 * The durable store between intake and delivery. A message is committed when its file (body,
 * then envelope) is fsync'd, renamed into queue/ and that directory is fsync'd: only then does
 * the device get its 250. Files in tmp/ are never acknowledged and are removed on start.
 */
export class Spool {
  readonly queueDir: string;
  readonly failedDir: string;
  private readonly tmpDir: string;
  private readonly queueSync: DirectorySync;
  private readonly failedSync: DirectorySync;
  private queuedBytes = 0;
  private readonly openTempFile: (path: string) => Promise<number>;
  private readonly writeChunkBytes: number;

  constructor(private readonly options: SpoolOptions) {
    this.queueDir = join(options.dir, 'queue');
    this.failedDir = join(options.dir, 'failed');
    this.tmpDir = join(options.dir, 'tmp');
    this.queueSync = new DirectorySync(this.queueDir);
    this.failedSync = new DirectorySync(this.failedDir);
    this.openTempFile = options.openTempFile ?? ((path) => openFd(path, 'wx'));
    this.writeChunkBytes = options.writeChunkBytes ?? 256 * 1024;
  }

  /** Creates the folders, drops unacknowledged leftovers, and returns the queued envelopes, oldest first. */
  async open(): Promise<MessageEnvelope[]> {
    await Promise.all([this.queueDir, this.failedDir, this.tmpDir].map((dir) => mkdir(dir, { recursive: true })));
    await rm(this.tmpDir, { recursive: true, force: true });
    await mkdir(this.tmpDir, { recursive: true });
    await this.convertLegacy();
    const names = await readdir(this.queueDir);
    const queued = new Set(names.filter((n) => n.endsWith(MESSAGE)).map((n) => n.slice(0, -MESSAGE.length)));
    for (const name of names) {
      // A state without its message is what a delivered message, a move to failed/ or a cut-short
      // resend leaves behind.
      if (name.endsWith(STATE) && !queued.has(name.slice(0, -STATE.length))) {
        await rm(join(this.queueDir, name), { force: true });
      }
    }
    const failedNames = await readdir(this.failedDir);
    const failed = new Set(failedNames.filter((n) => n.endsWith(MESSAGE)).map((n) => n.slice(0, -MESSAGE.length)));
    for (const name of failedNames) {
      // A record without its message: a move to failed/ cut short before the message moved, or a
      // resend cut short after it moved back. Either way the message is in the queue.
      if (name.endsWith(FAILURE) && !failed.has(name.slice(0, -FAILURE.length))) {
        await rm(join(this.failedDir, name), { force: true });
      }
    }
    const envelopes: MessageEnvelope[] = [];
    for (const id of [...queued].sort()) {
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
   * Reads a body and commits it with its envelope. Throws SpoolWriteError (451) when anything
   * fails, after removing what was written; a refusal decided while reading (size, line ends)
   * keeps its own reply. Small bodies never touch the disk before they are complete: they are
   * written with one call, then fsync'd once.
   */
  async accept(draft: EnvelopeDraft, openBody: () => Readable, receivedAt = new Date(), facts?: BodyFacts): Promise<MessageEnvelope> {
    const id = newMessageId(receivedAt);
    const tmpPath = join(this.tmpDir, id + MESSAGE);
    const finalPath = join(this.queueDir, id + MESSAGE);
    const hash = createHash('sha256');
    let size = 0;
    let held: Buffer[] = [];
    let heldBytes = 0;
    let fd: number | undefined;
    let renamed = false;
    try {
      for await (const chunk of openBody() as AsyncIterable<Buffer>) {
        hash.update(chunk);
        size += chunk.length;
        held.push(chunk);
        heldBytes += chunk.length;
        if (heldBytes >= this.writeChunkBytes) {
          // A large body: written piece by piece while the rest arrives.
          fd ??= await this.openTempFile(tmpPath);
          await writeAll(fd, held);
          held = [];
          heldBytes = 0;
        }
      }
      const envelope = newEnvelope(draft, id, receivedAt, size, hash.digest('hex'), facts?.headerMessageId());
      held.push(envelopeTrailer(envelope));
      fd ??= await this.openTempFile(tmpPath);
      await writeAll(fd, held);
      held = [];
      await fsyncFd(fd);
      const closing = fd;
      fd = undefined;
      await closeFd(closing);
      await rename(tmpPath, finalPath);
      renamed = true;
      await this.queueSync.sync();
      this.queuedBytes += size;
      return envelope;
    } catch (error) {
      if (fd !== undefined) {
        // Already failing: the original error is the one to report.
        await closeFd(fd).catch(() => undefined);
      }
      await rm(tmpPath, { force: true });
      if (renamed) {
        await rm(finalPath, { force: true });
      }
      throw error instanceof SmtpReplyError ? error : new SpoolWriteError(error);
    }
  }

  /** The body of a queued message, streamed from disk. */
  openBody(envelope: MessageEnvelope): Readable {
    return bodyStream(this.messagePath(envelope.id), envelope.size);
  }

  /** The body of a queued message, whole (for bodies small enough to travel inline). */
  async readBody(envelope: MessageEnvelope): Promise<Buffer> {
    const handle = await open(this.messagePath(envelope.id), 'r');
    try {
      const body = Buffer.allocUnsafe(envelope.size);
      let at = 0;
      while (at < envelope.size) {
        const { bytesRead } = await handle.read(body, at, envelope.size - at, at);
        if (bytesRead === 0) {
          throw new Error(`${this.messagePath(envelope.id)} ends before its body does`);
        }
        at += bytesRead;
      }
      return body;
    } finally {
      await handle.close();
    }
  }

  /**
   * Where a queued or failed message is, and its envelope, leaving no file open (the console's
   * pages, the history); undefined when there is none, also when it left between the two folders.
   */
  async locateMessage(id: string): Promise<{ envelope: MessageEnvelope; where: 'queue' | 'failed' } | undefined> {
    assertMessageId(id);
    for (const [where, dir] of [['queue', this.queueDir], ['failed', this.failedDir]] as const) {
      const envelope = await this.readEnvelopeIn(dir, id).catch(ignoreMissing);
      if (envelope) return { envelope, where };
    }
    return undefined;
  }

  /**
   * A queued or failed message's envelope and body (`smarthost show`, the console's download);
   * undefined when there is none. The file is opened before anything is returned, so the body
   * stays readable when the message is delivered, deleted or resent meanwhile: a stream that
   * opened its path later found it gone and raised an ENOENT nobody listened for. The caller
   * reads the body or destroys it (either closes the file).
   */
  async findMessage(id: string): Promise<{ envelope: MessageEnvelope; where: 'queue' | 'failed'; body: Readable } | undefined> {
    assertMessageId(id);
    for (const [where, dir] of [['queue', this.queueDir], ['failed', this.failedDir]] as const) {
      const opened = await this.openMessageIn(dir, id);
      if (opened) {
        return { envelope: opened.envelope, where, body: opened.body.open() };
      }
    }
    return undefined;
  }

  /**
   * Opens a queued message's file for a delivery; undefined when it is no longer in the queue
   * (deleted or delivered behind the worker's back). The open file keeps the body readable
   * however the message is removed or moved while it is sent; the caller closes it.
   */
  async openQueuedBody(envelope: MessageEnvelope): Promise<SpooledBody | undefined> {
    const handle = await open(this.messagePath(envelope.id), 'r').catch(ignoreMissing);
    return handle && spooledBody(handle, envelope.size);
  }

  async readEnvelope(id: string): Promise<MessageEnvelope> {
    return this.readEnvelopeIn(this.queueDir, id);
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

  /**
   * Removes a delivered message. `hasState: false` (a first attempt that succeeded, so no state
   * was ever written) saves looking for a state file.
   */
  async remove(envelope: MessageEnvelope, options: { hasState?: boolean } = {}): Promise<void> {
    // The message goes first: a state left without one is cleaned up on the next start.
    await removeIfPresent(this.messagePath(envelope.id));
    if (options.hasState !== false) {
      await removeIfPresent(join(this.queueDir, envelope.id + STATE));
    }
    await this.queueSync.sync();
    this.queuedBytes -= envelope.size;
  }

  /** Moves a message that will not be delivered to failed/, with the reason. Nothing is deleted. */
  async moveToFailed(envelope: MessageEnvelope, record: FailureRecord): Promise<void> {
    const id = envelope.id;
    // The record lands first: until the message follows, open() drops it and the message stays queued.
    await writeDurably(join(this.failedDir, id + FAILURE), JSON.stringify(record, null, 2));
    await rename(this.messagePath(id), join(this.failedDir, id + MESSAGE));
    await Promise.all([this.failedSync.sync(), this.queueSync.sync()]);
    await rm(join(this.queueDir, id + STATE), { force: true });
    this.queuedBytes -= envelope.size;
  }

  /** Ids of the messages in the queue (what a running worker may take), oldest first. */
  async committedIds(): Promise<string[]> {
    return (await readdir(this.queueDir))
      .filter((n) => n.endsWith(MESSAGE))
      .map((n) => n.slice(0, -MESSAGE.length))
      .sort();
  }

  /** Lists queued messages with their delivery state, oldest first, without changing anything. */
  async listQueued(): Promise<{ envelope: MessageEnvelope; state: DeliveryState | undefined }[]> {
    const ids = await this.committedIds().catch(() => [] as string[]);
    const out: { envelope: MessageEnvelope; state: DeliveryState | undefined }[] = [];
    for (const id of ids) {
      // Delivered, moved or deleted since the listing: no longer queued.
      const envelope = await this.readEnvelope(id).catch(ignoreMissing);
      if (envelope) out.push({ envelope, state: await this.readState(id) });
    }
    return out;
  }

  /** Lists failed messages with their failure records, oldest first. */
  async listFailed(): Promise<{ envelope: MessageEnvelope; failure: FailureRecord }[]> {
    const names = new Set(await readdir(this.failedDir).catch(() => [] as string[]));
    const out: { envelope: MessageEnvelope; failure: FailureRecord }[] = [];
    for (const name of [...names].filter((n) => n.endsWith(MESSAGE)).sort()) {
      const id = name.slice(0, -MESSAGE.length);
      if (!names.has(id + FAILURE)) {
        continue; // A resend in progress: the record is already gone.
      }
      // Resent or deleted since the listing: no longer failed.
      const envelope = await this.readEnvelopeIn(this.failedDir, id).catch(ignoreMissing);
      const failure = envelope && (await this.readFailure(id));
      if (envelope && failure) out.push({ envelope, failure });
    }
    return out;
  }

  /** Puts a failed message back in the queue for a fresh set of attempts (after the operator fixed the cause). */
  async requeueFailed(id: string): Promise<MessageEnvelope> {
    assertMessageId(id);
    const envelope = await this.readEnvelopeIn(this.failedDir, id);
    const failure = JSON.parse(await readFile(join(this.failedDir, id + FAILURE), 'utf8')) as FailureRecord;
    // A fresh set of attempts, but only for the recipients that do not have the message yet.
    const state: DeliveryState = {
      attempts: 0,
      pendingRcpts: failure.state.pendingRcpts,
      deliveredRcpts: failure.state.deliveredRcpts,
      rejectedRcpts: [],
    };
    // The state lands first: until the message follows, open() drops it as an orphan.
    await writeDurably(join(this.queueDir, id + STATE), JSON.stringify(state));
    await this.queueSync.sync();
    await rename(join(this.failedDir, id + MESSAGE), this.messagePath(id));
    await Promise.all([this.queueSync.sync(), this.failedSync.sync()]);
    await rm(join(this.failedDir, id + FAILURE), { force: true });
    this.queuedBytes += envelope.size;
    return envelope;
  }

  /** An operator deleted a failed message: the message goes first, so a crash leaves a record that open() drops. */
  async deleteFailed(id: string): Promise<void> {
    assertMessageId(id);
    await unlink(join(this.failedDir, id + MESSAGE));
    await this.failedSync.sync();
    await rm(join(this.failedDir, id + FAILURE), { force: true });
  }

  /** A failed message's record; undefined when there is none. */
  async readFailure(id: string): Promise<FailureRecord | undefined> {
    assertMessageId(id);
    try {
      return JSON.parse(await readFile(join(this.failedDir, id + FAILURE), 'utf8')) as FailureRecord;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw error;
    }
  }

  /** Releases the folders' descriptors (the spool may be used again; they are reopened). */
  async close(): Promise<void> {
    await Promise.all([this.queueSync.close(), this.failedSync.close()]);
  }

  get bytesQueued(): number {
    return this.queuedBytes;
  }

  private messagePath(id: string): string {
    return join(this.queueDir, id + MESSAGE);
  }

  /** The message's file, opened, with its envelope; undefined when it is not in `dir`. */
  private async openMessageIn(dir: string, id: string): Promise<{ envelope: MessageEnvelope; body: SpooledBody } | undefined> {
    const path = join(dir, id + MESSAGE);
    const handle = await open(path, 'r').catch(ignoreMissing);
    if (!handle) return undefined;
    try {
      const envelope = await readEnvelopeFrom(handle, path);
      return { envelope, body: spooledBody(handle, envelope.size, true) };
    } catch (error) {
      await handle.close();
      throw error;
    }
  }

  private async readEnvelopeIn(dir: string, id: string): Promise<MessageEnvelope> {
    const path = join(dir, id + MESSAGE);
    const handle = await open(path, 'r');
    try {
      return await readEnvelopeFrom(handle, path);
    } finally {
      await handle.close();
    }
  }

  /**
   * Spools written before one file per message kept `<id>.eml` and `<id>.json` side by side (the
   * envelope written last). Each committed pair becomes one file, written and fsync'd beside the
   * old pair before the old files go; a body without its envelope was never acknowledged.
   */
  private async convertLegacy(): Promise<void> {
    for (const dir of [this.queueDir, this.failedDir]) {
      const names = new Set(await readdir(dir));
      for (const name of names) {
        if (name.endsWith(LEGACY_BODY)) {
          const id = name.slice(0, -LEGACY_BODY.length);
          if (names.has(id + LEGACY_ENVELOPE)) {
            const envelope = messageEnvelopeSchema.parse(JSON.parse(await readFile(join(dir, id + LEGACY_ENVELOPE), 'utf8')));
            const tmp = join(this.tmpDir, id + MESSAGE);
            await writeDurably(tmp, Buffer.concat([await readFile(join(dir, name)), envelopeTrailer(envelope)]));
            await rename(tmp, join(dir, id + MESSAGE));
            const dirSync = new DirectorySync(dir);
            await dirSync.sync();
            await dirSync.close();
            await rm(join(dir, id + LEGACY_ENVELOPE), { force: true });
          }
          await rm(join(dir, name), { force: true });
        } else if (name.endsWith(LEGACY_ENVELOPE) && !name.endsWith(STATE) && !name.endsWith(FAILURE) && !names.has(name.slice(0, -LEGACY_ENVELOPE.length) + LEGACY_BODY)) {
          // Converted before a crash cut the clean-up short, or (in failed/) a body still in the queue.
          const id = name.slice(0, -LEGACY_ENVELOPE.length);
          if (names.has(id + MESSAGE) || dir === this.queueDir) {
            await rm(join(dir, name), { force: true });
          }
        }
      }
    }
  }
}

/** An open spool file's body: streamed (once) from the descriptor, so a rename or unlink of the file does not matter. */
export interface SpooledBody {
  open(): Readable;
  close(): Promise<void>;
}

/** `closeWithStream`: the stream closes the file when it ends or is destroyed (the caller only gets the stream). */
function spooledBody(handle: FileHandle, size: number, closeWithStream = false): SpooledBody {
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    await handle.close();
  };
  return {
    open() {
      if (size === 0) {
        if (closeWithStream) void close().catch(() => undefined);
        return Readable.from([]);
      }
      if (closeWithStream) closed = true; // The stream's autoClose owns it now.
      return handle.createReadStream({ start: 0, end: size - 1, autoClose: closeWithStream });
    },
    close,
  };
}

/** ENOENT (the message was delivered, moved or deleted meanwhile) reads as "not there". */
function ignoreMissing(error: NodeJS.ErrnoException): undefined {
  if (error.code === 'ENOENT') return undefined;
  throw error;
}

/** The body of a spool file: its first `size` bytes, the envelope after them left out. */
function bodyStream(path: string, size: number): Readable {
  return size === 0 ? Readable.from([]) : createReadStream(path, { start: 0, end: size - 1 });
}

/** An id given on the command line must not reach a path unchecked (no `../`). */
function assertMessageId(id: string): void {
  if (!messageEnvelopeSchema.shape.id.safeParse(id).success) {
    throw new RangeError(`'${id}' is not a message id`);
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

async function writeDurably(path: string, content: string | Buffer): Promise<void> {
  const handle = await open(path, 'w');
  try {
    await handle.writeFile(content);
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

/**
 * The envelope as one object literal with its fields always in the same order. An object spread
 * (`{ ...draft, id }`) gave every envelope a hidden class of its own in V8: with a backlog of 10,000
 * queued messages that was ~4 MB of heap for shapes alone.
 */
function newEnvelope(draft: EnvelopeDraft, id: string, receivedAt: Date, size: number, sha256: string, headerMessageId: string | undefined): MessageEnvelope {
  const envelope: MessageEnvelope = {
    client: draft.client,
    helo: draft.helo,
    mailFrom: draft.mailFrom,
    rcptTo: draft.rcptTo,
    id,
    receivedAt: receivedAt.toISOString(),
    size,
    sha256,
  };
  if (draft.sendAs !== undefined) envelope.sendAs = draft.sendAs;
  if (headerMessageId !== undefined) envelope.headerMessageId = headerMessageId;
  return envelope;
}
