import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ChangeMessageVisibilityBatchCommand, DeleteMessageBatchCommand, type Message, type SQSClient } from '@aws-sdk/client-sqs';
import type { DeliveryLogger } from '../../delivery/logger.ts';
import { applyToMessages } from '../../functions/sqs-poller/sqsBatch.ts';

const messages: Message[] = Array.from({ length: 12 }, (_, i) => ({ MessageId: `m${i}`, ReceiptHandle: `r${i}` }));

function recordingLogger() {
  const errors: { fields: Record<string, unknown>; message: string }[] = [];
  const logger: DeliveryLogger = { debug() {}, info() {}, warn() {}, error: (fields, message) => void errors.push({ fields: fields as Record<string, unknown>, message: String(message) }) };
  return { logger, errors };
}

/** A stand-in SQS client: `answer` decides each call's result from the receipt handles it carries. */
function scriptedSqs(answer: (call: number, handles: string[]) => { failed?: { index: number; senderFault?: boolean }[]; throws?: boolean }) {
  const calls: { command: string; handles: string[]; visibility?: number[] }[] = [];
  const sqs = {
    async send(command: DeleteMessageBatchCommand | ChangeMessageVisibilityBatchCommand) {
      const entries = command.input.Entries ?? [];
      const handles = entries.map((e) => e.ReceiptHandle!);
      calls.push({
        command: command.constructor.name,
        handles,
        ...(command instanceof ChangeMessageVisibilityBatchCommand ? { visibility: command.input.Entries!.map((e) => e.VisibilityTimeout!) } : {}),
      });
      const result = answer(calls.length, handles);
      if (result.throws) throw Object.assign(new Error('connection reset'), { name: 'TimeoutError' });
      return {
        Failed: (result.failed ?? []).map((f) => ({ Id: String(f.index), Code: f.senderFault ? 'ReceiptHandleIsInvalid' : 'InternalError', SenderFault: f.senderFault === true })),
      };
    },
  } as unknown as Pick<SQSClient, 'send'>;
  return { sqs, calls };
}

describe('DeleteMessageBatch / ChangeMessageVisibilityBatch with failed entries', () => {
  test('an entry SQS fails for its own reasons is sent again and then succeeds; batches hold at most 10', async () => {
    const { logger, errors } = recordingLogger();
    // The first request fails its second entry (r1) on SQS's side.
    const { sqs, calls } = scriptedSqs((call) => (call === 1 ? { failed: [{ index: 1 }] } : {}));
    const failed = await applyToMessages(sqs, 'q', messages, { kind: 'delete' }, logger, { backoffMs: 1 });
    assert.deepEqual(failed, []);
    assert.deepEqual(
      calls.map((c) => [c.command, c.handles]),
      [
        ['DeleteMessageBatchCommand', ['r0', 'r1', 'r2', 'r3', 'r4', 'r5', 'r6', 'r7', 'r8', 'r9']],
        ['DeleteMessageBatchCommand', ['r1']],
        ['DeleteMessageBatchCommand', ['r10', 'r11']],
      ],
    );
    assert.deepEqual(errors, []);
  });

  test('an entry refused for the request itself (sender fault) is not sent again, and is logged with its message id', async () => {
    const { logger, errors } = recordingLogger();
    const { sqs, calls } = scriptedSqs((call) => (call === 1 ? { failed: [{ index: 0, senderFault: true }] } : {}));
    const failed = await applyToMessages(sqs, 'q', messages.slice(0, 3), { kind: 'delete' }, logger, { backoffMs: 1 });
    assert.deepEqual(failed.map((m) => m.MessageId), ['m0']);
    assert.equal(calls.length, 1);
    assert.equal(errors.length, 1);
    assert.equal(errors[0]!.fields.sqsMessageId, 'm0');
    assert.match(String(errors[0]!.fields.reason), /ReceiptHandleIsInvalid/);
  });

  test('a call that keeps failing is tried `attempts` times, then every message of it is logged', async () => {
    const { logger, errors } = recordingLogger();
    const { sqs, calls } = scriptedSqs(() => ({ throws: true }));
    const failed = await applyToMessages(sqs, 'q', messages.slice(0, 2), { kind: 'visibility', seconds: 0 }, logger, { attempts: 3, backoffMs: 1 });
    assert.deepEqual(failed.map((m) => m.MessageId), ['m0', 'm1']);
    assert.equal(calls.length, 3);
    assert.deepEqual(calls[0]!.visibility, [0, 0], 'given back with visibility 0');
    assert.deepEqual(errors.map((e) => e.fields.sqsMessageId), ['m0', 'm1']);
    assert.match(errors[0]!.message, /could not change the visibility/);
  });
});

describe('smarthost worker stopping', () => {
  test('messages received as SIGTERM came are given back at once (visibility 0), not hidden for the visibility timeout, and not started', async () => {
    const { SqsPoller } = await import('../../functions/sqs-poller/sqsPoller.ts');
    const { ReceiveMessageCommand } = await import('@aws-sdk/client-sqs');
    let answerReceive: ((value: { Messages: Message[] }) => void) | undefined;
    const visibilityCalls: { handle: string; seconds: number }[][] = [];
    const sqs = {
      send(command: unknown) {
        if (command instanceof ReceiveMessageCommand) return new Promise((resolve) => (answerReceive = resolve));
        if (command instanceof ChangeMessageVisibilityBatchCommand) {
          visibilityCalls.push(command.input.Entries!.map((e) => ({ handle: e.ReceiptHandle!, seconds: e.VisibilityTimeout! })));
          return Promise.resolve({ Failed: [] });
        }
        return Promise.reject(new Error(`unexpected ${String((command as object).constructor.name)}`));
      },
    } as unknown as Pick<SQSClient, 'send'>;
    const { logger } = recordingLogger();
    // deps are never reached: nothing may be started once stopping.
    const poller = new SqsPoller({ sqs, queueUrl: 'q', deps: {} as never, logger, visibilitySeconds: 360 });
    const started: string[] = [];
    const gaveBack: string[] = [];
    poller.on('record', (r) => started.push(r.sqsMessageId));
    poller.on('gave-back', (given) => gaveBack.push(...given.map((m) => m.MessageId!)));
    poller.start();
    while (!answerReceive) await new Promise((resolve) => setImmediate(resolve));
    const stopped = poller.stop();
    answerReceive({ Messages: messages.slice(0, 2) });
    await stopped;
    assert.deepEqual(visibilityCalls, [[{ handle: 'r0', seconds: 0 }, { handle: 'r1', seconds: 0 }]]);
    assert.deepEqual(gaveBack, ['m0', 'm1']);
    assert.deepEqual(started, []);
  });
});
