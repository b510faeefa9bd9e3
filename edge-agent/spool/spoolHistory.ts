import { mkdir, open, readdir, readFile, rename, stat, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { MessageEnvelope } from '../../contract/messageEnvelope.ts';
import type { Spool } from './spool.ts';
import type { AcceptedEvent, DeliveryEvent, DeliveryHistoryStore } from '../../delivery/history/deliveryEvent.ts';

const HISTORY = '.history.jsonl';

/**
 * A message's delivery history on the office box, one JSON event a line: beside the message in
 * queue/ while it waits (appended and fsync'd before its state, so the history never says less
 * than the state), moved to failed/ with it, and to history/ when it is done, where it is kept
 * for `spool.historyRetention`. The `accepted` event is the envelope itself (written with the
 * message before the 250), so intake writes nothing more.
 */
export class SpoolHistory implements DeliveryHistoryStore {
  private readonly queueDir: string;
  private readonly failedDir: string;
  readonly historyDir: string;
  private made = false;

  constructor(
    spoolDir: string,
    /** The envelope of a queued or failed message, for its `accepted` event; undefined when gone. */
    private readonly findEnvelope: (id: string) => Promise<MessageEnvelope | undefined>,
  ) {
    this.queueDir = join(spoolDir, 'queue');
    this.failedDir = join(spoolDir, 'failed');
    this.historyDir = join(spoolDir, 'history');
  }

  /** Appends to the live history beside the queued message, durably. */
  async append(event: DeliveryEvent): Promise<void> {
    const handle = await open(join(this.queueDir, event.messageId + HISTORY), 'a');
    try {
      await handle.appendFile(`${JSON.stringify(event)}\n`);
      await handle.sync();
    } finally {
      await handle.close();
    }
  }

  /**
   * Appends to the history wherever the message waits: in failed/ once given up, else beside it
   * in queue/ (a notice is written after the message has moved).
   */
  async appendBeside(event: DeliveryEvent): Promise<void> {
    const failed = join(this.failedDir, event.messageId + HISTORY);
    const inFailed = await stat(failed).then(
      () => true,
      () => false,
    );
    const handle = await open(inFailed ? failed : join(this.queueDir, event.messageId + HISTORY), 'a');
    try {
      await handle.appendFile(`${JSON.stringify(event)}\n`);
      await handle.sync();
    } finally {
      await handle.close();
    }
  }

  /** The message moved to failed/: its history follows. */
  async moveToFailed(id: string): Promise<void> {
    await renameIfPresent(join(this.queueDir, id + HISTORY), join(this.failedDir, id + HISTORY));
  }

  /** A resend put the message back in the queue: its history follows. */
  async moveToQueue(id: string): Promise<void> {
    await renameIfPresent(join(this.failedDir, id + HISTORY), join(this.queueDir, id + HISTORY));
  }

  /**
   * The message is done (delivered, or handed over to the queue): its history, with `last` and its
   * `accepted` event, goes to history/. Not fsync'd: losing it in a crash loses no mail.
   * `hadLive: false` (a first attempt) saves reading a live file that cannot exist.
   */
  async archive(envelope: MessageEnvelope, last: DeliveryEvent[], options: { hadLive?: boolean } = {}): Promise<void> {
    await this.ensureDir();
    const live = join(this.queueDir, envelope.id + HISTORY);
    const earlier = options.hadLive === false ? '' : await readFile(live, 'utf8').catch(() => '');
    const lines = [JSON.stringify(acceptedEvent(envelope)), ...(earlier ? [earlier.trimEnd()] : []), ...last.map((e) => JSON.stringify(e))];
    await writeFile(join(this.historyDir, envelope.id + HISTORY), `${lines.join('\n')}\n`);
    if (earlier) {
      await unlink(live).catch(() => undefined);
    }
  }

  /**
   * An operator deleted the message from `where`: `event` closes its history, which goes to
   * history/ (with its `accepted` event, the envelope being gone) and is kept like a done one's.
   */
  async retire(envelope: MessageEnvelope, where: 'queue' | 'failed', event: DeliveryEvent): Promise<void> {
    await this.ensureDir();
    const live = join(where === 'queue' ? this.queueDir : this.failedDir, envelope.id + HISTORY);
    const earlier = (await readFile(live, 'utf8').catch(() => '')).trimEnd();
    const hasAccepted = earlier.split('\n').some((line) => line.includes('"type":"accepted"'));
    const lines = [...(hasAccepted ? [] : [JSON.stringify(acceptedEvent(envelope))]), ...(earlier ? [earlier] : []), JSON.stringify(event)];
    await writeFile(join(this.historyDir, envelope.id + HISTORY), `${lines.join('\n')}\n`);
    await unlink(live).catch(() => undefined);
  }

  /** Ids of the messages whose history is kept in history/ (done or deleted), any order. */
  async archivedIds(): Promise<string[]> {
    const names = await readdir(this.historyDir).catch(() => [] as string[]);
    return names.filter((n) => n.endsWith(HISTORY)).map((n) => n.slice(0, -HISTORY.length));
  }

  /** The message's events, oldest first, wherever the message is. */
  async read(id: string): Promise<DeliveryEvent[]> {
    const texts = await Promise.all([this.historyDir, this.failedDir, this.queueDir].map((dir) => readFile(join(dir, id + HISTORY), 'utf8').catch(() => '')));
    const events = texts.flatMap((text) =>
      text
        .split('\n')
        .filter((line) => line.trim() !== '')
        .flatMap((line) => {
          try {
            return [JSON.parse(line) as DeliveryEvent];
          } catch {
            return []; // A line cut short by a crash.
          }
        }),
    );
    if (!events.some((e) => e.type === 'accepted')) {
      const envelope = await this.findEnvelope(id);
      if (envelope) events.unshift(acceptedEvent(envelope));
    }
    return events.sort((a, b) => Date.parse(a.at) - Date.parse(b.at));
  }

  /** Deletes the history of messages done more than `retentionMs` ago; returns how many. */
  async prune(retentionMs: number, now = Date.now()): Promise<number> {
    const names = await readdir(this.historyDir).catch(() => [] as string[]);
    let removed = 0;
    for (const name of names.filter((n) => n.endsWith(HISTORY))) {
      const path = join(this.historyDir, name);
      const info = await stat(path).catch(() => undefined);
      if (info && now - info.mtimeMs > retentionMs) {
        await unlink(path).catch(() => undefined);
        removed += 1;
      }
    }
    return removed;
  }

  private async ensureDir(): Promise<void> {
    if (!this.made) {
      await mkdir(this.historyDir, { recursive: true });
      this.made = true;
    }
  }
}

/** The history of the spool in `dir`, finding envelopes through `spool`. */
export function spoolHistory(spool: Pick<Spool, 'locateMessage'>, dir: string): SpoolHistory {
  return new SpoolHistory(dir, async (id) => (await spool.locateMessage(id).catch(() => undefined))?.envelope);
}

/** The `accepted` event, read off the envelope the spool committed before the device's 250. */
export function acceptedEvent(envelope: MessageEnvelope): AcceptedEvent {
  const event: AcceptedEvent = {
    type: 'accepted',
    messageId: envelope.id,
    at: envelope.receivedAt,
    client: { name: envelope.client.name, ip: envelope.client.ip },
    helo: envelope.helo,
    mailFrom: envelope.mailFrom,
    rcptTo: [...envelope.rcptTo],
    size: envelope.size,
  };
  if (envelope.sendAs) event.sendAs = envelope.sendAs;
  if (envelope.headerMessageId) event.headerMessageId = envelope.headerMessageId;
  return event;
}

async function renameIfPresent(from: string, to: string): Promise<void> {
  try {
    await rename(from, to);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
}
