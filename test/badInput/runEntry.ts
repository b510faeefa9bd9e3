import assert from 'node:assert/strict';
import { join } from 'node:path';
import { sendRaw, startTestAgent, type TestAgent } from '../../testbed/helpers/agentHarness.ts';
import { RawSmtpClient } from '../../testbed/helpers/rawSmtpClient.ts';
import { listDir } from '../intake/helpers/messageBytes.ts';
import { HELP_REPLY, queuedId, quit } from '../intake/helpers/smtpSession.ts';
import { pollUntil } from '../../testbed/helpers/pollUntil.ts';
import { FROM, TO } from './hostileClients.ts';
import { isProgrammed, type AgentSetup, type BadInput, type EntryContext, type ExpectedReply, type Opening, type ScriptedEntry, type SetupFiles } from './types.ts';
import { readOutboxMessage } from '../../testbed/helpers/relayTrace.ts';

/** One agent per setup, started when an entry first needs it. */
export class AgentPool {
  private readonly agents = new Map<AgentSetup, Promise<TestAgent>>();

  constructor(private readonly files: SetupFiles) {}

  get(setup: AgentSetup): Promise<TestAgent> {
    let agent = this.agents.get(setup);
    if (!agent) {
      agent = startTestAgent(setup.config(this.files));
      this.agents.set(setup, agent);
    }
    return agent;
  }

  async disposeAll(): Promise<void> {
    const started = [...this.agents.values()];
    this.agents.clear();
    await Promise.all(started.map(async (agent) => (await agent.catch(() => undefined))?.dispose()));
  }
}

/** Plays one entry against `agent`; every connection it opened is closed afterwards, pass or fail. */
export async function runEntry(entry: BadInput, agent: TestAgent, files: SetupFiles): Promise<void> {
  const cleanups: (() => void)[] = [];
  const context: EntryContext = {
    agent,
    files,
    track: (close) => cleanups.push(close),
    open: async (options = {}) => {
      const client = await RawSmtpClient.open(agent.address.port, options.localAddress);
      cleanups.push(() => client.close());
      await openWith(client, options.opening ?? 'ehlo');
      return client;
    },
  };
  try {
    if (isProgrammed(entry)) {
      await entry.run(context);
    } else {
      await play(entry, context);
    }
  } finally {
    for (const close of cleanups) {
      close();
    }
  }
}

async function openWith(client: RawSmtpClient, opening: Opening): Promise<void> {
  if (opening === 'none') {
    return;
  }
  const [greeting] = await client.read(1);
  assert.match(greeting ?? '', /^220 /);
  if (opening === 'ehlo') {
    assert.match(await client.command('EHLO device.test'), /^250 /);
  }
}

async function play(entry: ScriptedEntry, context: EntryContext): Promise<void> {
  const client = await context.open({ localAddress: entry.localAddress, opening: entry.opening });
  for (const [index, exchange] of entry.exchanges.entries()) {
    if (exchange.send.length > 0) {
      client.write(exchange.send);
    }
    if (exchange.expect.length === 0) {
      // Nothing to wait for: yield once so that this write leaves before the next one.
      await new Promise((resolve) => setImmediate(resolve));
      continue;
    }
    assertReplies(await client.read(exchange.expect.length), exchange.expect, `replies to write ${index + 1}`);
  }
  if (entry.end === 'closed') {
    // Asked for at once, before the close can be handled: any further reply would resolve this.
    await assert.rejects(client.read(1), /connection closed; replies so far: \[\]$/);
    return;
  }
  // HELP's 214 is a reply no step of a transaction gives: it must be the very next one.
  client.write('HELP\r\n');
  assert.deepEqual(await client.read(1), [HELP_REPLY], 'no reply was left over');
  await quit(client);
}

export function assertReplies(actual: string[], expected: readonly ExpectedReply[], what: string): void {
  if (expected.every((reply) => typeof reply === 'string')) {
    assert.deepEqual(actual, expected, what);
    return;
  }
  assert.equal(actual.length, expected.length, `${what}: ${JSON.stringify(actual)}`);
  expected.forEach((reply, i) => {
    if (typeof reply === 'string') {
      assert.equal(actual[i], reply, `${what}, reply ${i + 1}`);
    } else {
      assert.match(actual[i] ?? '', reply, `${what}, reply ${i + 1}`);
    }
  });
}

/** The .eml files in the outbox. */
export async function outboxMessages(agent: TestAgent): Promise<string[]> {
  return (await listDir(agent.config.outbox.dir)).filter((name) => name.endsWith('.eml'));
}

/** Contents (latin1, below the relay's trace field) of the outbox messages not in `before`, in arrival order. */
export async function newMessages(agent: TestAgent, before: readonly string[]): Promise<string[]> {
  const added = (await outboxMessages(agent)).filter((name) => !before.includes(name)).sort();
  return Promise.all(added.map(async (name) => (await readOutboxMessage(agent.config.outbox.dir, name.slice(0, -'.eml'.length))).toString('latin1')));
}

/** Nothing half-written is left in spool/tmp (checked until the clean-up after a close has run). */
export async function spoolTmpEmpties(agent: TestAgent): Promise<void> {
  const tmp = join(agent.config.spool.dir, 'tmp');
  await pollUntil(async () => (await listDir(tmp)).length === 0, 5_000, `spool/tmp of ${agent.config.spool.dir} to be empty`, 0);
}

/** A device on a fresh connection still gets its 250 and its message reaches the outbox unchanged. */
export async function assertStillServes(agent: TestAgent, label: string): Promise<void> {
  const raw = `From: ${FROM}\r\nTo: ${TO}\r\nSubject: still serving after ${label}\r\n\r\nscan attached\r\n`;
  const id = queuedId(await sendRaw(agent.address.port, FROM, [TO], raw));
  await agent.deliveryLoop.whenIdle();
  assert.equal((await readOutboxMessage(agent.config.outbox.dir, id)).toString('latin1'), raw);
}
