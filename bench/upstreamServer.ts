/**
 * The fake Exchange Online (and its token endpoint) in a process of its own, so that its TLS and
 * SMTP work does not slow the load generator. Started by bench/lib/upstream.ts over IPC; never run
 * by hand. Limits are off: no per-minute rate, no per-mailbox connection cap. Captured bodies are
 * counted and dropped at once, so gigabytes of benchmark mail do not pile up in memory.
 */
import type { CapturedMessage } from '../testbed/fakes/fakeExchangeOnline.ts';
import { BASIC_PASSWORD, RELAY_MAILBOX, startExchangeOnlineRig } from '../testbed/helpers/exchangeOnlineRig.ts';
import type { UpstreamReply, UpstreamRequest } from './lib/upstreamProtocol.ts';

const rig = await startExchangeOnlineRig({ maxConnectionsPerMailbox: 1_000_000 });
const exo = rig.exo;
const captured = exo.messages as CapturedMessage[];

let count = 0;
let bytes = 0;
let lastAt = 0;
let baseThrottled = 0;
let baseErrors = 0;

/** Counts what the fake accepted since the last drain and forgets the bodies. */
function drain(): void {
  for (const message of captured) {
    count += 1;
    bytes += message.raw.length;
    lastAt = message.receivedAt.getTime();
  }
  captured.length = 0;
}
const drainTimer = setInterval(drain, 50);

// Most SMTP sessions open at once since the last reset: a condition that is never met, checked
// by the fake after every change of its state (connection opened or closed, AUTH, message).
let peakSessions = 0;
exo
  .waitFor(() => {
    peakSessions = Math.max(peakSessions, exo.activeSessions());
    return false;
  }, 2 ** 31 - 1)
  .catch(() => undefined);

function stats() {
  drain();
  return {
    count,
    bytes,
    lastAt,
    throttled: exo.throttled - baseThrottled,
    errorReplies: exo.errorReplies.slice(baseErrors).slice(-5),
    errorCount: exo.errorReplies.length - baseErrors,
    maxConcurrentSessions: peakSessions,
  };
}

function send(reply: UpstreamReply): void {
  process.send?.(reply);
}

process.on('message', (request: UpstreamRequest) => {
  switch (request.type) {
    case 'reset':
      drain();
      count = 0;
      bytes = 0;
      lastAt = 0;
      baseThrottled = exo.throttled;
      baseErrors = exo.errorReplies.length;
      peakSessions = exo.activeSessions();
      send({ type: 'done', id: request.id, stats: stats() });
      break;
    case 'stats':
      send({ type: 'done', id: request.id, stats: stats() });
      break;
    case 'wait':
      exo.waitFor(() => count + captured.length >= request.count, request.timeoutMs, `${request.count} message(s)`).then(
        () => send({ type: 'done', id: request.id, stats: stats() }),
        (error: unknown) => send({ type: 'done', id: request.id, stats: stats(), error: String(error) }),
      );
      break;
  }
});

// The parent going away (even by kill -9) closes the IPC channel: stop with it.
process.on('disconnect', () => {
  clearInterval(drainTimer);
  void rig.close().finally(() => process.exit(0));
});

send({
  type: 'ready',
  port: exo.port,
  upstream: rig.upstream(),
  basicUser: RELAY_MAILBOX,
  basicPassword: BASIC_PASSWORD,
});
