import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import type { SendMessageCommand } from '@aws-sdk/client-sqs';
import { inlineQueueMessage, serializeQueueMessage } from '../../contract/queueMessage.ts';
import type { AttemptEvent, DeliveryEvent } from '../../delivery/history/deliveryEvent.ts';
import { silentLogger } from '../../delivery/logger.ts';
import type { RetryPolicy } from '../../delivery/retryPolicy.ts';
import { SubmitError, type RecipientRejection, type Submitter, type UpstreamFailureReport } from '../../delivery/smtp/submission.ts';
import { SpoolDeliveryLoop, type AttemptRecord } from '../../edge-agent/spool-delivery/spoolDeliveryLoop.ts';
import { Spool } from '../../edge-agent/spool/spool.ts';
import { spoolHistory } from '../../edge-agent/spool/spoolHistory.ts';
import { BodyStore } from '../../functions/queue-delivery/bodyStore.ts';
import { DeadLetterQueue } from '../../functions/queue-delivery/deadLetters.ts';
import { DeliveryLedger } from '../../functions/queue-delivery/deliveryLedger.ts';
import { noMetrics } from '../../functions/queue-delivery/deliveryMetrics.ts';
import { MailboxPool } from '../../delivery/pool/mailboxPool.ts';
import { handleQueueRecord, RetryLaterError } from '../../functions/queue-delivery/handleQueueRecord.ts';
import { startLocalDynamo, type LocalDynamo } from '../../testbed/aws/localDynamo.ts';

/**
 * The embedded spool delivery loop and the cloud's queue record handler fed the same upstream
 * replies reach the same decisions, attempt by attempt, and both keep them in their history.
 */

type Reply = { accept: true } | { fail: UpstreamFailureReport } | { refuse: RecipientRejection[] };

const BUSY: UpstreamFailureReport = { responseCode: 451, response: '451 4.3.0 Temporary server error', command: 'DATA', message: 'temporary' };
const AUTH: UpstreamFailureReport = { responseCode: 535, response: '535 5.7.3 Authentication unsuccessful', command: 'AUTH XOAUTH2', message: 'auth' };
const NO_SUCH_USER: UpstreamFailureReport = {
  responseCode: 550,
  response: '550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup',
  command: 'RCPT TO',
  message: 'no such user',
};
const A = 'a@contoso.com';
const B = 'b@contoso.com';
const POLICY: RetryPolicy = { scheduleMs: [10, 10], maxAgeMs: 86_400_000 };

/** Answers each submission with the next scripted reply (the last one repeats). */
function scriptedSubmitter(replies: Reply[]): Submitter {
  let next = 0;
  return {
    async submit(message) {
      for await (const _ of message.raw) {
        // Read the body as a real upstream would.
      }
      const reply = replies[Math.min(next++, replies.length - 1)] as Reply;
      if ('fail' in reply) throw new SubmitError(reply.fail);
      if ('refuse' in reply) {
        const refused = new Set(reply.refuse.map((r) => r.rcpt));
        return { accepted: message.to.filter((rcpt) => !refused.has(rcpt)), rejected: reply.refuse, response: '250 2.0.0 OK' };
      }
      return { accepted: message.to, rejected: [], response: '250 2.0.0 OK' };
    },
    async close() {},
  };
}

/** What both runtimes must agree on, per attempt. */
function decisions(events: DeliveryEvent[]) {
  return events
    .filter((e): e is AttemptEvent => e.type === 'attempt')
    .map((e) => ({ attempt: e.attempt, action: e.decision.action, accepted: e.accepted, refused: e.refused.map((r) => r.rcpt), deferred: e.deferred.map((r) => r.rcpt), kind: e.kind, reply: e.reply }));
}

const SCENARIOS: { name: string; rcptTo: string[]; replies: Reply[]; attempts: number; expected: string[] }[] = [
  { name: '451, 451, 250', rcptTo: [A], replies: [{ fail: BUSY }, { fail: BUSY }, { accept: true }], attempts: 3, expected: ['retry', 'retry', 'done'] },
  { name: '535 5.7.3', rcptTo: [A], replies: [{ fail: AUTH }], attempts: 1, expected: ['hold'] },
  { name: '550 5.1.10 for one recipient of two', rcptTo: [A, B], replies: [{ refuse: [{ rcpt: B, failure: NO_SUCH_USER }] }], attempts: 1, expected: ['done'] },
];

describe('the same upstream replies give the same decisions in the spool and in the cloud', () => {
  let dynamo: LocalDynamo;
  let dir: string;

  before(async () => {
    dynamo = await startLocalDynamo();
    dir = await mkdtemp(join(tmpdir(), 'settle-runtimes-'));
  });
  after(async () => {
    await dynamo?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  for (const [index, scenario] of SCENARIOS.entries()) {
    test(scenario.name, async () => {
      const body = Buffer.from('Subject: same\r\n\r\nbody\r\n');

      // Embedded: the spool and its delivery loop.
      const spool = new Spool({ dir: join(dir, `spool${index}`) });
      await spool.open();
      const history = spoolHistory(spool, join(dir, `spool${index}`));
      const envelope = await spool.accept({ client: { name: 'scanner', ip: '127.0.0.1' }, helo: 'scanner', mailFrom: 'scanner@contoso.com', rcptTo: scenario.rcptTo }, () => Readable.from([body]));
      const loop = new SpoolDeliveryLoop({ spool, submitter: scriptedSubmitter(scenario.replies), policy: POLICY, logger: silentLogger, concurrency: 1, throttlePauseMs: 10, history, route: 'test' });
      const records: AttemptRecord[] = [];
      const enough = new Promise<void>((resolve) =>
        loop.on('attempt', (record) => {
          records.push(record);
          if (records.length === scenario.attempts) resolve();
        }),
      );
      await loop.start([]);
      loop.enqueue(envelope);
      await enough;
      await loop.stop(1000);
      await spool.close();
      const spoolEvents = await history.read(envelope.id);

      // Cloud: the queue record handler over the ledger, SQS visibility and the dead-letter queue.
      const ledger = new DeliveryLedger(dynamo.client, dynamo.tableName);
      const deadLettered: SendMessageCommand['input'][] = [];
      const visibility: number[] = [];
      const queueBody = serializeQueueMessage(inlineQueueMessage(envelope, body));
      const cloudPool = new MailboxPool([{ mailbox: undefined, submitter: scriptedSubmitter(scenario.replies), route: 'upstream', connections: 1 }]);
      const deps = {
        ledger,
        bodies: new BodyStore({ send: async () => assert.fail('inline bodies need no S3') }),
        deadLetters: new DeadLetterQueue({ send: async (command: SendMessageCommand) => void deadLettered.push(command.input) } as never, 'http://127.0.0.1/dlq'),
        pool: async () => cloudPool,
        changeVisibility: async (_handle: string, seconds: number) => void visibility.push(seconds),
        metrics: noMetrics,
        logger: silentLogger,
        policy: POLICY,
        leaseMs: 60_000,
        reportingHost: 'smarthost-test',
      };
      const results: string[] = [];
      for (let receive = 1; receive <= scenario.attempts; receive++) {
        const result = await handleQueueRecord({ messageId: `sqs-${index}`, body: queueBody, receiptHandle: `handle-${receive}`, receiveCount: receive }, deps).catch((error: unknown) => {
          if (error instanceof RetryLaterError) return 'retry later';
          throw error;
        });
        results.push(result);
      }
      const cloudEvents = await ledger.readHistory(envelope.id);

      assert.deepEqual(
        decisions(spoolEvents).map((d) => d.action),
        scenario.expected,
      );
      assert.deepEqual(decisions(cloudEvents), decisions(spoolEvents));
      assert.equal(spoolEvents[0]?.type, 'accepted', 'the spool history starts at acceptance');
      // How each runtime carried the last decision out.
      const last = scenario.expected[scenario.expected.length - 1];
      if (last === 'done' && scenario.rcptTo.length === 1) {
        assert.deepEqual(records.map((r) => r.action), ['retry', 'retry', 'delivered']);
        assert.deepEqual(results, ['retry later', 'retry later', 'delivered']);
        assert.deepEqual(visibility, [1, 1]);
      } else if (last === 'hold') {
        assert.deepEqual(records.map((r) => r.action), ['retry']);
        assert.deepEqual(results, ['retry later']);
        assert.deepEqual(deadLettered, [], 'held in the queue, not dead-lettered');
      } else {
        assert.deepEqual([records.map((r) => r.action), (await spool.listFailed()).map((f) => f.failure.state.pendingRcpts)], [['failed'], [[B]]]);
        assert.deepEqual(results, ['dead-lettered']);
        assert.deepEqual(deadLettered.map((d) => d.MessageAttributes?.SmarthostFailureReason?.StringValue), [`recipients refused: ${B}`]);
      }
    });
  }
});
