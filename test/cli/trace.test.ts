import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { trace, type LedgerReader } from '../../cli/trace.ts';
import type { DeliveryEvent } from '../../delivery/history/deliveryEvent.ts';
import { silentLogger } from '../../delivery/logger.ts';
import { SubmitError, type Submitter } from '../../delivery/smtp/submission.ts';
import { agentConfigSchema, type AgentConfig } from '../../edge-agent/config/agentConfigSchema.ts';
import { SpoolDeliveryLoop } from '../../edge-agent/spool-delivery/spoolDeliveryLoop.ts';
import { Spool } from '../../edge-agent/spool/spool.ts';
import { spoolHistory } from '../../edge-agent/spool/spoolHistory.ts';

/** `smarthost trace ID` (cli/trace.ts) over a real spool, and with the cloud ledger's part. */

const TIMES = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z {2}/;

function collect(): { stream: PassThrough; text: () => string } {
  const stream = new PassThrough();
  const chunks: Buffer[] = [];
  stream.on('data', (chunk: Buffer) => chunks.push(chunk));
  return { stream, text: () => Buffer.concat(chunks).toString('utf8') };
}

/** 451 on the first submission, 250 after. */
function onceBusy(): Submitter {
  let calls = 0;
  return {
    async submit(message) {
      for await (const _ of message.raw) {
        // Drain the body.
      }
      if (calls++ === 0) throw new SubmitError({ responseCode: 451, response: '451 4.3.0 Temporary server error', command: 'DATA', message: 'temporary' });
      return { accepted: message.to, rejected: [], response: '250 2.0.0 OK' };
    },
    async close() {},
  };
}

describe('smarthost trace', () => {
  let dir: string;
  let id: string;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'trace-'));
    const spool = new Spool({ dir });
    await spool.open();
    const envelope = await spool.accept({ client: { name: 'scanner', ip: '127.0.0.1' }, helo: 'scanner', mailFrom: 'scanner@contoso.com', rcptTo: ['you@contoso.com'] }, () =>
      Readable.from([Buffer.from('Subject: t\r\n\r\nx\r\n')]),
    );
    id = envelope.id;
    const loop = new SpoolDeliveryLoop({ spool, submitter: onceBusy(), policy: { scheduleMs: [5], maxAgeMs: 60_000 }, logger: silentLogger, concurrency: 1, throttlePauseMs: 5, history: spoolHistory(spool, dir), route: 'smtp test:587' });
    const delivered = new Promise<void>((resolve) => loop.on('attempt', (r) => r.action === 'delivered' && resolve()));
    // The loop's retry timer does not hold the process open (unref'd); this does, until delivered.
    const keepAlive = setInterval(() => undefined, 1000);
    await loop.start([]);
    loop.enqueue(envelope);
    await delivered;
    clearInterval(keepAlive);
    await loop.stop(1000);
    await spool.close();
  });
  after(async () => rm(dir, { recursive: true, force: true }));

  function config(queue: unknown = {}): AgentConfig {
    return agentConfigSchema.parse({ spool: { dir }, queue });
  }

  test('embedded: acceptance, the deferred attempt and the delivery, one line each, from history/', async () => {
    const out = collect();
    const err = collect();
    assert.equal(await trace(config(), id, out.stream, err.stream), 0);
    const lines = out.text().trimEnd().split('\n');
    assert.equal(lines.length, 3, out.text());
    assert.ok(lines.every((line) => TIMES.test(line)));
    assert.match(lines[0] ?? '', /accepted {5}from scanner \(127\.0\.0\.1\), MAIL FROM <scanner@contoso\.com>, to you@contoso\.com, 17 bytes$/);
    assert.match(lines[1] ?? '', /attempt {6}#1 via smtp test:587, \d+ ms; deferred you@contoso\.com; reply: 451 4\.3\.0 Temporary server error \(transient\); retry at \d{4}-/);
    assert.match(lines[2] ?? '', /attempt {6}#2 via smtp test:587, \d+ ms; delivered to you@contoso\.com; done$/);
    assert.equal(err.text(), '');
  });

  test('an unknown id: exit 1 and says why', async () => {
    const err = collect();
    assert.equal(await trace(config(), 'unknown0001', collect().stream, err.stream), 1);
    assert.equal(err.text(), 'unknown0001: no history (not a message of this relay, or done longer ago than spool.historyRetention)\n');
  });

  const sqs = { queueUrl: 'https://sqs.eu-west-1.amazonaws.com/123456789012/smarthost-mail', bucket: 'mail' };

  test('cloud mode: the ledger\'s events join the agent\'s, in time order', async () => {
    const held: DeliveryEvent = {
      type: 'attempt',
      messageId: id,
      at: '2999-01-01T00:00:00.000Z',
      attempt: 1,
      route: 'upstream',
      startedAt: '2999-01-01T00:00:00.000Z',
      durationMs: 12,
      accepted: [],
      refused: [],
      deferred: [{ rcpt: 'you@contoso.com', reply: '535 5.7.3 Authentication unsuccessful', kind: 'config' }],
      reply: '535 5.7.3 Authentication unsuccessful',
      kind: 'config',
      operatorAction: 'check the app registration',
      decision: { action: 'hold', at: '2999-01-01T04:00:00.000Z' },
    };
    const asked: unknown[] = [];
    const ledger: LedgerReader = async (...args) => {
      asked.push(args);
      return [held];
    };
    const out = collect();
    assert.equal(await trace(config({ kind: 'sqs', sqs: { ...sqs, ledgerTable: 'smarthost-ledger', region: 'eu-west-1' } }), id, out.stream, collect().stream, ledger), 0);
    assert.deepEqual(asked, [['smarthost-ledger', 'eu-west-1', id]]);
    const last = out.text().trimEnd().split('\n').at(-1);
    assert.equal(
      last,
      '2999-01-01T00:00:00.000Z  attempt      #1 via upstream, 12 ms; deferred you@contoso.com; reply: 535 5.7.3 Authentication unsuccessful (config); held for the operator, next try at 2999-01-01T04:00:00.000Z; fix: check the app registration',
    );
  });

  test('cloud mode without ledgerTable, or without access: the agent\'s part, and says so', async () => {
    const noTable = collect();
    assert.equal(await trace(config({ kind: 'sqs', sqs }), id, collect().stream, noTable.stream, async () => assert.fail('not asked')), 0);
    assert.match(noTable.text(), /^queue\.sqs\.ledgerTable is not set: only the agent's part/);
    const denied = collect();
    const refuse: LedgerReader = async () => {
      throw Object.assign(new Error('User is not authorized to perform: dynamodb:GetItem'), { name: 'AccessDeniedException' });
    };
    assert.equal(await trace(config({ kind: 'sqs', sqs: { ...sqs, ledgerTable: 't' } }), id, collect().stream, denied.stream, refuse), 0);
    assert.match(denied.text(), /^could not read the delivery ledger t \(AccessDeniedException: User is not authorized .*\): only the agent's part is shown; the operator's credentials need dynamodb:GetItem on the table\.\n$/);
  });
});
