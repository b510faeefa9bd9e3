import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import { sqsPollerSettings } from '../../cli/sqsPollerSettings.ts';
import { DLQ_ATTRIBUTES } from '../../contract/cloudResources.ts';
import { parseQueueMessage } from '../../contract/queueMessage.ts';
import { agentConfigSchema, type AgentConfigInput } from '../../edge-agent/config/agentConfigSchema.ts';
import { startLocalDynamo, type LocalDynamo } from '../../testbed/aws/localDynamo.ts';
import { startLocalS3, type LocalS3 } from '../../testbed/aws/localS3.ts';
import { startLocalSqs, type LocalSqs } from '../../testbed/aws/localSqs.ts';
import { sendRaw } from '../../testbed/helpers/agentHarness.ts';
import { startCloudPipeline, type CloudPipeline } from '../../testbed/helpers/cloudPipeline.ts';
import { RELAY_MAILBOX, startExchangeOnlineRig, type ExchangeOnlineRig } from '../../testbed/helpers/exchangeOnlineRig.ts';
import { pollUntil } from '../../testbed/helpers/pollUntil.ts';
import { assertFailureReport } from './reportAssertions.ts';

const ADMIN = 'ops@contoso.com';
const SENDER = 'scanner@contoso.com';
const NOBODY = 'nobody@contoso.com';
const BODY_MARKER = 'PAYROLL-SCAN-CONFIDENTIAL-4711';

describe('smarthost worker: its admin address is notices.admin', () => {
  const settingsFor = (notices: unknown) =>
    sqsPollerSettings(
      agentConfigSchema.parse({
        queue: { kind: 'sqs', sqs: { queueUrl: 'http://127.0.0.1:9/000000000000/mail', bucket: 'bodies', deadLetterQueueUrl: 'http://127.0.0.1:9/000000000000/dlq', ledgerTable: 'ledger' } },
        upstream: { secretArn: 'arn:aws:secretsmanager:us-east-1:000000000000:secret:smarthost-upstream' },
        ...(notices === undefined ? {} : { notices }),
      } as AgentConfigInput),
    ).failureNoticeTo;

  it('takes notices.admin when notify sends to the admin (its default once admin is set), as the Lambda takes failureNoticeTo', () => {
    assert.equal(settingsFor({ admin: ADMIN }), ADMIN);
    assert.equal(settingsFor({ admin: ADMIN, notify: 'both' }), ADMIN);
  });

  it('has none without notices, or with notify none or sender (the sender is the agent’s to name)', () => {
    assert.equal(settingsFor(undefined), undefined);
    assert.equal(settingsFor({ admin: ADMIN, notify: 'none' }), undefined);
    assert.equal(settingsFor({ admin: ADMIN, notify: 'sender' }), undefined);
  });
});

describe('cloud path with notices: device → agent (noticeTo) → SQS → worker → reports to the sender and the admin', () => {
  let rig: ExchangeOnlineRig;
  let sqs: LocalSqs;
  let s3: LocalS3;
  let dynamo: LocalDynamo;
  let pipeline: CloudPipeline;

  before(async () => {
    [rig, sqs, s3, dynamo] = await Promise.all([startExchangeOnlineRig(), startLocalSqs({ visibilityTimeout: 30, maxReceiveCount: 10 }), startLocalS3(), startLocalDynamo()]);
    pipeline = await startCloudPipeline({
      aws: { sqs, s3, dynamo },
      sqsBlock: { queueUrl: sqs.queueUrl, bucket: s3.bucket, region: 'us-east-1' },
      upstream: rig.upstream(),
      maxBackoffMs: 200,
      // The office box: this scanner's notices go to its sender; the admin is the worker's.
      agentConfig: { clients: [{ name: 'scanner', address: '127.0.0.1', notices: 'sender' }] },
      workerConfig: { notices: { admin: ADMIN } },
    });
  });

  after(async () => {
    await pipeline?.stop();
    await Promise.all([rig?.close(), sqs?.stop(), s3?.stop(), dynamo?.stop()]);
  });

  it('a scan refused for good gets one report to its sender and one to the worker’s admin', async () => {
    const before = rig.exo.messages.length;
    const raw = `From: ${SENDER}\r\nTo: ${NOBODY}\r\nSubject: Scan 4711\r\nMessage-ID: <scan-4711@scanner.contoso.com>\r\n\r\n${BODY_MARKER}\r\n`;
    await sendRaw(pipeline.agent.address.port, SENDER, [NOBODY], raw);

    const notices = () => rig.exo.messages.slice(before).filter((m) => m.mailFrom === '');
    await pollUntil(() => notices().length >= 2, 20_000, 'two failure notices from the worker');
    // Nothing more follows (the record was deleted, the ledger holds what went).
    await sleep(1_500);
    assert.deepEqual(notices().map((n) => n.rcptTo.join()).sort(), [ADMIN, SENDER]);
    for (const notice of notices()) {
      const parsed = await assertFailureReport(notice, { to: notice.rcptTo[0] ?? '', from: RELAY_MAILBOX, finalRecipient: NOBODY, status: '5.1.10', bodyMarker: BODY_MARKER });
      assert.equal(parsed.subject, 'Undeliverable: Scan 4711');
      assert.match(parsed.text ?? '', /smarthost redrive/);
    }
    // The original waits in the dead-letter queue, its envelope naming the sender for the notice.
    const { Messages } = await sqs.client.send(new ReceiveMessageCommand({ QueueUrl: sqs.dlqUrl, MessageAttributeNames: ['All'], WaitTimeSeconds: 0 }));
    assert.equal(Messages?.length, 1);
    assert.deepEqual(parseQueueMessage(Messages?.[0]?.Body ?? '').envelope.noticeTo, [SENDER]);
    assert.equal(Messages?.[0]?.MessageAttributes?.[DLQ_ATTRIBUTES.kind]?.StringValue, 'permanent');
    assert.ok(pipeline.workerLogs.lines.some((line) => /failure notice sent/.test(line) && line.includes(SENDER)));
  });
});
