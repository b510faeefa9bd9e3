import { createPublicKey } from 'node:crypto';
import { join } from 'node:path';
import { EXCHANGE_LIMITS } from '../../delivery/exchangeLimits.ts';
import { GRAPH_MAILBOX_LIMITS } from '../../delivery/graph/graphLimits.ts';
import type { UpstreamConfigInput } from '../../delivery/upstreamConfig.ts';
import { startFakeExchangeOnline, type FakeExchangeOnline } from '../../testbed/fakes/fakeExchangeOnline.ts';
import { startFakeGraph, type FakeGraph } from '../../testbed/fakes/fakeGraph.ts';
import { startFakeTokenEndpoint, type FakeTokenEndpoint } from '../../testbed/fakes/fakeTokenEndpoint.ts';
import { caPem } from '../../testbed/fakes/tlsFixtures.ts';
import { startAgent } from './agent.ts';
import { agentQueueDepth } from './queueDepth.ts';
import { KiB, messageOf, SENDER, Session } from './smtpLoad.ts';

/**
 * Delivery rows with Exchange Online's limits on (issue 13, "Performance"): the agent as an office
 * runs it (the default upstream.rateLimit: 30 messages a minute and 3 connections per mailbox)
 * against fakes that enforce the same limits (the fake Exchange Online's 30 a minute and 3 sessions
 * per mailbox, answered 432; the fake Graph's per-mailbox limits and Exchange's 30 a minute there,
 * answered 429). A row queues more mail than the limit lets out in its measured minutes, so the
 * queue never runs dry while the rate is measured, then waits until everything arrived.
 */

const TENANT = '11111111-2222-3333-4444-555555555555';
const APP = 'aaaaaaaa-0000-0000-0000-0000000000b1';
const SECRET = 'drain-bench-secret';
const MAILBOXES = ['relay@contoso.com', 'ops@contoso.com', 'scans@contoso.com'];
const RECIPIENT = 'you@contoso.com';

/**
 * Whole minutes the rate is measured over. Sliding 60 s windows let a mailbox's minute go out in
 * a burst, so a part of a minute says little; two show the steady state after the first burst.
 */
export const DRAIN_MEASURED_MINUTES = 2;
/**
 * The measured span stops this much short of its whole minutes: the first message of the row waits
 * for a token and a TLS handshake, so the next minute's burst (its slot counted from the first
 * start) can reach the fake up to that much less than a minute after the first delivery.
 */
const DRAIN_WINDOW_GUARD_MS = 1_000;
/** Connections the device side sends on: intake is never the bottleneck of these rows. */
const SENDING_CONNECTIONS = 3;

interface DrainFakes {
  tokens: FakeTokenEndpoint;
  exo: FakeExchangeOnline;
  graph: FakeGraph;
  close(): Promise<void>;
}

/** The identity platform, Exchange Online and Graph with Exchange's limits on, in this process (at 30 a minute their work is small). */
async function startDrainFakes(): Promise<DrainFakes> {
  const tokens = await startFakeTokenEndpoint({ tenantId: TENANT, clients: { [APP]: { secret: SECRET, graphRoles: ['Mail.Send', 'Mail.ReadBasic.All'] } } });
  const exo = await startFakeExchangeOnline({
    tokenVerifier: tokens,
    internalDomains: ['contoso.com'],
    mailboxes: [...MAILBOXES, RECIPIENT],
    // Every pool mailbox may send as the benchmark's device address, so the pool may use any.
    sendAs: Object.fromEntries(MAILBOXES.map((m) => [m, [SENDER]])),
    messagesPerMinute: EXCHANGE_LIMITS.messagesPerMinute,
    maxConnectionsPerMailbox: EXCHANGE_LIMITS.connections,
  });
  const graph = await startFakeGraph({
    mailboxes: [...MAILBOXES, RECIPIENT],
    publicKey: createPublicKey(tokens.publicKeyPem),
    sendAs: Object.fromEntries(MAILBOXES.map((m) => [m, [SENDER]])),
    messagesPerMinute: EXCHANGE_LIMITS.messagesPerMinute,
  });
  return {
    tokens,
    exo,
    graph,
    async close() {
      await graph.close();
      await exo.close();
      await tokens.close();
    },
  };
}

export interface DrainScenario {
  name: string;
  route: 'smtp' | 'graph';
  mailboxes: number;
  /** What the limits let out, in messages a minute. */
  expectedPerMinute: number;
}

const perMailbox = (route: 'smtp' | 'graph') =>
  // Graph's own budget (10,000 requests per 10 minutes) is far above Exchange's 30 a minute, which the relay keeps on both routes.
  route === 'graph' ? Math.min(EXCHANGE_LIMITS.messagesPerMinute, GRAPH_MAILBOX_LIMITS.requests / (GRAPH_MAILBOX_LIMITS.requestsWindowMs / 60_000)) : EXCHANGE_LIMITS.messagesPerMinute;

export const DRAIN_SCENARIOS: DrainScenario[] = [
  { name: 'drain: smtp, 1 mailbox', route: 'smtp', mailboxes: 1, expectedPerMinute: perMailbox('smtp') },
  { name: 'drain: smtp, pool of 3 mailboxes', route: 'smtp', mailboxes: 3, expectedPerMinute: 3 * perMailbox('smtp') },
  { name: 'drain: graph, 1 mailbox', route: 'graph', mailboxes: 1, expectedPerMinute: perMailbox('graph') },
];

/** The agent's upstream block: the production limits (rateLimit left out), one mailbox or a pool. */
function upstreamFor(fakes: DrainFakes, scenario: DrainScenario): UpstreamConfigInput {
  const mailboxes = MAILBOXES.slice(0, scenario.mailboxes);
  const auth = { type: 'oauth2' as const, tenantId: TENANT, clientId: APP, clientSecret: SECRET, authority: fakes.tokens.url, user: mailboxes[0]! };
  return {
    host: '127.0.0.1',
    port: fakes.exo.port,
    security: 'starttls',
    ca: caPem,
    ...(scenario.route === 'graph' ? { route: 'graph' as const, graph: { baseUrl: fakes.graph.url }, auth: { ...auth, scope: 'https://graph.microsoft.com/.default' } } : { auth }),
    ...(scenario.mailboxes > 1 ? { mailboxes: mailboxes.map((mailbox) => ({ mailbox })) } : {}),
  };
}

export interface DrainRow {
  scenario: DrainScenario;
  messages: number;
  /** Messages the fake took in the measured minutes, per minute. */
  perMinute?: number;
  /** First delivery → last, seconds. */
  drainedSeconds?: number;
  /** 432 (SMTP) or 429/503 (Graph) answers the agent got. */
  throttled?: number;
  /** Messages the fake took more than once (same Message-ID). */
  duplicates?: number;
  /** The throttling replies, each with how often it came. */
  throttleReplies?: string[];
  /** Messages per mailbox, in the pool's order. */
  perMailbox?: number[];
  error?: string;
}

interface Arrival {
  at: number;
  messageId: string | undefined;
  mailbox: string;
}

/** What the fakes took, all of it this row's (fresh fakes per row). */
function arrivals(fakes: DrainFakes, route: 'smtp' | 'graph'): Arrival[] {
  if (route === 'graph') return fakes.graph.sent.map((m) => ({ at: m.at, messageId: m.internetMessageId, mailbox: m.mailbox.toLowerCase() }));
  return fakes.exo.messages.map((m) => ({ at: m.receivedAt.getTime(), messageId: /^message-id:[ \t]*(<[^>\r\n]+>)/im.exec(m.raw.subarray(0, 4096).toString('latin1'))?.[1], mailbox: (m.auth?.user ?? '').toLowerCase() }));
}

const throttledSoFar = (fakes: DrainFakes, route: 'smtp' | 'graph') => (route === 'graph' ? fakes.graph.requests.filter((r) => r.status === 429 || r.status === 503).length : fakes.exo.throttled);

/**
 * One drain row on a fresh agent and fresh fakes: the fakes' windows of an earlier row would still
 * hold its last minute for the same mailbox and throttle this one. `log` gets progress (stderr).
 */
export async function measureDrain(scenario: DrainScenario, log: (text: string) => void): Promise<DrainRow> {
  const fakes = await startDrainFakes();
  try {
    return await measureOn(fakes, scenario, log);
  } finally {
    await fakes.close();
  }
}

async function measureOn(fakes: DrainFakes, scenario: DrainScenario, log: (text: string) => void): Promise<DrainRow> {
  const messages = (DRAIN_MEASURED_MINUTES + 1) * scenario.expectedPerMinute;
  const row: DrainRow = { scenario, messages };
  const agent = await startAgent({ upstream: upstreamFor(fakes, scenario) });
  try {
    const sessions = await Promise.all(Array.from({ length: SENDING_CONNECTIONS }, () => Session.open(agent.port)));
    let next = 0;
    // A distinct Message-ID per message (messageOf numbers them), so duplicates can be counted.
    const base = Date.now();
    await Promise.all(sessions.map(async (s) => {
      while (next < messages) await s.send(messageOf(KiB, base + next++));
    }));
    await Promise.all(sessions.map((s) => s.close()));
    log(`${messages} queued`);
    const expectedSeconds = (messages / scenario.expectedPerMinute) * 60;
    const deadline = Date.now() + expectedSeconds * 1000 * 2 + 60_000;
    let got = arrivals(fakes, scenario.route);
    let reported = 0;
    while ((got.length < messages || (await agentQueueDepth(join(agent.dir, 'spool'))) > 0) && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 250));
      got = arrivals(fakes, scenario.route);
      if (got.length >= reported + scenario.expectedPerMinute) {
        reported = got.length;
        log(`${got.length}`);
      }
    }
    // A moment more, so a late duplicate would still be counted.
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    got = arrivals(fakes, scenario.route);
    row.throttled = throttledSoFar(fakes, scenario.route);
    const replies =
      scenario.route === 'graph'
        ? fakes.graph.requests.filter((r) => r.status === 429 || r.status === 503).map((r) => `HTTP ${r.status}`)
        : fakes.exo.errorReplies.filter((r) => r.startsWith('432'));
    const counts = new Map<string, number>();
    for (const reply of replies) counts.set(reply, (counts.get(reply) ?? 0) + 1);
    row.throttleReplies = [...counts].map(([reply, n]) => `${n} × ${reply}`);
    const ids = got.map((a) => a.messageId ?? '');
    row.duplicates = ids.length - new Set(ids).size;
    row.perMailbox = MAILBOXES.slice(0, scenario.mailboxes).map((m) => got.filter((a) => a.mailbox === m).length);
    const distinct = new Set(ids).size;
    if (distinct < messages) {
      row.error = `${distinct} of ${messages} messages reached the fake within ${Math.round((deadline - base) / 1000)} s`;
      return row;
    }
    const times = got.map((a) => a.at).sort((a, b) => a - b);
    const first = times[0]!;
    const measuredEnd = first + DRAIN_MEASURED_MINUTES * 60_000 - DRAIN_WINDOW_GUARD_MS;
    row.perMinute = times.filter((t) => t < measuredEnd).length / DRAIN_MEASURED_MINUTES;
    row.drainedSeconds = (times[times.length - 1]! - first) / 1000;
    return row;
  } catch (error) {
    row.error = `${(error as Error).message}\n${agent.lastLines(5).join('\n')}`;
    return row;
  } finally {
    await agent.stop();
  }
}
