import { once } from 'node:events';
import { setTimeout as delay } from 'node:timers/promises';
import type { FakeExchangeOnline } from '../../testbed/fakes/fakeExchangeOnline.ts';
import type { DeviceFleet } from './DeviceFleet.ts';
import type { SeededRandom } from '../../testbed/helpers/seededRandom.ts';
import type { SqsTap } from './SqsTap.ts';
import { withinDeadline } from './withinDeadline.ts';

export type KillMode =
  /** A device has written half of its body after DATA. */
  | 'during-data'
  /** A device has just read its 250. */
  | 'after-250'
  /** The fake upstream has just taken a message (its 250 may or may not have reached the sender). */
  | 'upstream-accepted'
  /** One to three upstream arrivals from now, then 0–20 ms: somewhere inside a delivery. */
  | 'delivering'
  /** 50–800 ms from now, wherever that falls. */
  | 'random-delay'
  /** A SendMessage has reached the relay in front of SQS, which never passes it on. */
  | 'sqs-before-send'
  /** SQS has taken a SendMessage, its answer has not reached the agent. */
  | 'sqs-after-send';

export interface KillContext {
  /** SIGKILL to the process under test; resolves once it has exited. Idempotent. */
  kill(): Promise<void>;
  fleet: DeviceFleet;
  exo: FakeExchangeOnline;
  random: SeededRandom;
  tap?: SqsTap;
  /** How long to wait for the instant before killing anyway. */
  timeoutMs: number;
}

/**
 * Waits for the instant `mode` names and kills the process there. Returns false when the instant
 * did not come within the timeout and the kill happened anyway (reported, not failed: under a
 * random plan a round can find, say, no device in DATA).
 */
export async function killAt(mode: KillMode, ctx: KillContext): Promise<boolean> {
  const { exo, fleet, random, tap, timeoutMs } = ctx;
  let hit = false;
  const arrivals = exo.messages.length;
  switch (mode) {
    case 'during-data': {
      const paused = new Promise<void>((resolve) =>
        fleet.pauseNextData(async () => {
          hit = true;
          await ctx.kill();
          resolve();
        }),
      );
      await withinDeadline(paused, timeoutMs, 'a device in DATA').catch(() => fleet.pauseNextData(undefined));
      break;
    }
    case 'after-250':
      await once(fleet, 'acknowledged', { signal: AbortSignal.timeout(timeoutMs) }).then(
        () => (hit = true),
        () => undefined,
      );
      break;
    case 'upstream-accepted':
      await exo.waitFor(() => exo.messages.length > arrivals, timeoutMs, 'an upstream arrival').then(
        () => (hit = true),
        () => undefined,
      );
      break;
    case 'delivering': {
      const more = random.int(1, 3);
      const pause = random.int(0, 20);
      await exo.waitFor(() => exo.messages.length >= arrivals + more, timeoutMs, 'upstream arrivals').then(
        () => (hit = true),
        () => undefined,
      );
      await delay(pause);
      break;
    }
    case 'random-delay':
      await delay(random.int(50, 800));
      hit = true;
      break;
    case 'sqs-before-send': {
      if (!tap) throw new Error('sqs-before-send needs the SQS tap');
      const dropped = new Promise<void>((resolve) =>
        tap.onNextSendBeforeSqs(async () => {
          hit = true;
          await ctx.kill();
          resolve();
          return 'drop';
        }),
      );
      await withinDeadline(dropped, timeoutMs, 'a SendMessage').catch(() => tap.onNextSendBeforeSqs(undefined));
      break;
    }
    case 'sqs-after-send': {
      if (!tap) throw new Error('sqs-after-send needs the SQS tap');
      const taken = new Promise<void>((resolve) =>
        tap.onNextSendAfterSqs(async () => {
          hit = true;
          await ctx.kill();
          resolve();
        }),
      );
      await withinDeadline(taken, timeoutMs, 'a SendMessage SQS accepted').catch(() => tap.onNextSendAfterSqs(undefined));
      break;
    }
  }
  // Also when a hook already killed: kill() is idempotent and waits for the exit either way.
  await ctx.kill();
  return hit;
}
