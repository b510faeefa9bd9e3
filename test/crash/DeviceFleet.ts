import { createHash } from 'node:crypto';
import { EventEmitter, once } from 'node:events';
import { RawSmtpClient } from '../../testbed/helpers/rawSmtpClient.ts';
import type { SeededRandom } from '../../testbed/helpers/seededRandom.ts';

export type AttemptOutcome =
  /** The transaction is still going on. */
  | 'sending'
  /** The device read `250 ... queued as ID` after its end of data. */
  | 'acknowledged'
  /** The agent answered 4xx/5xx somewhere in the transaction. */
  | 'refused'
  /** The connection failed or closed before a final reply: the device never saw a 250. */
  | 'cut-off';

/** One SMTP transaction of one device message; a retry is a new attempt with the same Message-ID. */
export interface DeviceAttempt {
  /** `<messageKey>.a<attempt>`, in the X-Crash-Attempt header of the body. */
  key: string;
  /** `<runTag>-d<device>-m<seq>`, in the Subject and Message-ID of every attempt. */
  messageKey: string;
  attempt: number;
  /** SHA-256 of the body as sent: the agent spools, forwards and delivers these exact bytes. */
  sha256: string;
  size: number;
  /** The agent incarnation the attempt talked to. */
  generation: number;
  outcome: AttemptOutcome;
  reply?: string;
  /** The agent's id from `queued as ID`. */
  queueId?: string;
}

export interface FleetTarget {
  port: number;
  /** Incarnation number of the agent process behind the port, counting from 1. */
  generation: number;
}

export interface DeviceFleetOptions {
  devices: number;
  random: SeededRandom;
  /** Makes the message keys of one run unique. */
  runTag: string;
  /** Body sizes in bytes; each message picks one. */
  sizes: readonly number[];
  from: string;
  to: string;
  /** Attempts per message before the device gives up (keeps every loop bounded). @default 40 */
  maxAttempts?: number;
  /** A transaction that takes longer is cut off by the device. @default 15000 */
  attemptTimeoutMs?: number;
  /** After a failed attempt, how long a device waits for a restarted agent before trying the same one again. @default 3000 */
  retryWaitMs?: number;
}

/** Stops a transaction at a reply the device did not want. */
class Refusal extends Error {
  constructor(readonly reply: string) {
    super(reply);
  }
}

/**
 * Office devices sending without pause: each device sends one message after the other over its
 * own connection, each message with a unique Subject and Message-ID, and retries a message whose
 * transaction failed (as devices do) until it reads a 250. Every attempt is recorded with the
 * SHA-256 of its exact bytes, so whatever arrives upstream can be traced back to the attempt.
 */
export class DeviceFleet extends EventEmitter<{ acknowledged: [DeviceAttempt] }> {
  readonly attempts: DeviceAttempt[] = [];
  private target: FleetTarget | undefined;
  private targetWaiters: (() => void)[] = [];
  private readonly openClients = new Set<RawSmtpClient>();
  private loops: Promise<void>[] = [];
  private stopping = false;
  private closed = false;
  private dataPause: ((attempt: DeviceAttempt) => Promise<void>) | undefined;

  constructor(private readonly options: DeviceFleetOptions) {
    super();
  }

  /** Points the devices at an agent (a restarted one gets a higher generation). */
  setTarget(target: FleetTarget): void {
    this.target = target;
    for (const wake of this.targetWaiters.splice(0)) wake();
  }

  start(): void {
    this.loops = Array.from({ length: this.options.devices }, (_, index) => this.runDevice(index));
  }

  /**
   * The next device to reach the middle of its DATA runs `hook` there and waits for it, with
   * half of its body written: a kill inside the hook lands during DATA.
   */
  pauseNextData(hook: ((attempt: DeviceAttempt) => Promise<void>) | undefined): void {
    this.dataPause = hook;
  }

  /** Resolves once `count` attempts sent to agent incarnation `generation` were acknowledged. */
  async untilAcknowledged(generation: number, count: number, timeoutMs: number): Promise<void> {
    const acked = () => this.attempts.filter((a) => a.generation === generation && a.outcome === 'acknowledged').length;
    const signal = AbortSignal.timeout(timeoutMs);
    while (acked() < count) {
      try {
        await once(this, 'acknowledged', { signal });
      } catch {
        throw new Error(`waited ${timeoutMs} ms for ${count} acknowledgements from agent #${generation}, got ${acked()}`);
      }
    }
  }

  /** Devices stop starting new messages; resolves when each has its last message acknowledged (or gave up). */
  async stopSending(): Promise<void> {
    this.stopping = true;
    await Promise.all(this.loops);
  }

  /** Ends everything at once: open transactions are cut off, waiting devices return. */
  async close(): Promise<void> {
    this.stopping = true;
    this.closed = true;
    for (const wake of this.targetWaiters.splice(0)) wake();
    for (const client of this.openClients) client.close();
    await Promise.all(this.loops);
  }

  private async runDevice(index: number): Promise<void> {
    for (let seq = 0; !this.stopping; seq++) {
      await this.sendUntilAcknowledged(`${this.options.runTag}-d${index}-m${seq}`);
    }
  }

  private async sendUntilAcknowledged(messageKey: string): Promise<void> {
    const size = this.options.random.pick(this.options.sizes);
    const pattern = Array.from({ length: 69 }, () => this.options.random.pick(FILLER_ALPHABET)).join('');
    let failedOn = 0;
    for (let n = 1; n <= (this.options.maxAttempts ?? 40); n++) {
      const target = await this.targetAbove(failedOn, n === 1 ? 0 : (this.options.retryWaitMs ?? 3_000));
      if (!target) return;
      const key = `${messageKey}.a${n}`;
      const body = messageBody(this.options, messageKey, key, size, pattern);
      const attempt: DeviceAttempt = {
        key,
        messageKey,
        attempt: n,
        sha256: createHash('sha256').update(body).digest('hex'),
        size: body.length,
        generation: target.generation,
        outcome: 'sending',
      };
      this.attempts.push(attempt);
      await this.transact(attempt, body, target.port);
      if (attempt.outcome === 'acknowledged' || attempt.reply?.startsWith('5')) return;
      failedOn = target.generation;
    }
  }

  /**
   * The current target once its generation is above `generation`, or after `waitMs` the current
   * one anyway (an agent that failed a transaction without being restarted is tried again).
   */
  private async targetAbove(generation: number, waitMs: number): Promise<FleetTarget | undefined> {
    const deadline = Date.now() + waitMs;
    while (!this.closed) {
      const target = this.target;
      if (target && (target.generation > generation || Date.now() >= deadline)) return target;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.max(0, deadline - Date.now()) || 1_000);
        this.targetWaiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    return undefined;
  }

  private async transact(attempt: DeviceAttempt, body: Buffer, port: number): Promise<void> {
    let client: RawSmtpClient | undefined;
    let timer: NodeJS.Timeout | undefined;
    // RawSmtpClient.read waits for good when the connection closed before it was called; every
    // read here also ends at the close, and the whole transaction at the timeout.
    const timedOut = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error('timed out')), this.options.attemptTimeoutMs ?? 15_000);
    });
    timedOut.catch(() => undefined);
    try {
      client = await Promise.race([RawSmtpClient.open(port), timedOut]);
      this.openClients.add(client);
      const open = client;
      const closed = open.whenClosed().then(() => Promise.reject(new Error('connection closed before the reply')));
      closed.catch(() => undefined);
      const reply = async (line?: string): Promise<string> => {
        if (line !== undefined) open.write(`${line}\r\n`);
        const [text = ''] = await Promise.race([open.read(1), closed, timedOut]);
        return text;
      };
      expect(await reply(), '220');
      expect(await reply('EHLO device.crash.test'), '250');
      expect(await reply(`MAIL FROM:<${this.options.from}>`), '250');
      expect(await reply(`RCPT TO:<${this.options.to}>`), '250');
      expect(await reply('DATA'), '354');
      const half = body.length >> 1;
      open.write(body.subarray(0, half));
      const pause = this.dataPause;
      if (pause) {
        this.dataPause = undefined;
        await pause(attempt);
      }
      open.write(body.subarray(half));
      const final = await reply('.');
      expect(final, '250');
      attempt.outcome = 'acknowledged';
      attempt.reply = final;
      attempt.queueId = /queued as (\S+)/.exec(final)?.[1];
      this.emit('acknowledged', attempt);
    } catch (error) {
      if (error instanceof Refusal) {
        attempt.outcome = 'refused';
        attempt.reply = error.reply;
      } else {
        attempt.outcome = 'cut-off';
        attempt.reply = (error as Error).message.slice(0, 200);
      }
    } finally {
      clearTimeout(timer);
      if (client) {
        client.close();
        this.openClients.delete(client);
      }
    }
  }
}

const FILLER_ALPHABET = [...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'];

function expect(reply: string, code: string): void {
  if (!reply.startsWith(code)) throw new Refusal(reply);
}

/** CRLF lines, none starting with a dot, so the bytes on the wire are the bytes spooled. */
function messageBody(options: DeviceFleetOptions, messageKey: string, attemptKey: string, size: number, pattern: string): Buffer {
  const head =
    `From: ${options.from}\r\nTo: ${options.to}\r\nSubject: crash test ${messageKey}\r\n` +
    `Message-ID: <${messageKey}@crash.test>\r\nX-Crash-Attempt: ${attemptKey}\r\n\r\n`;
  const lines = Math.max(1, Math.ceil((size - head.length) / 78));
  const parts = [head];
  for (let i = 0; i < lines; i++) parts.push(`${String(i).padStart(6, '0')} ${pattern}\r\n`);
  return Buffer.from(parts.join(''), 'latin1');
}
