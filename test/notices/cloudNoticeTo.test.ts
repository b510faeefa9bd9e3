import assert from 'node:assert/strict';
import { after, afterEach, before, describe, it } from 'node:test';
import { DeleteMessageCommand, ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import { MAX_NOTICE_TO } from '../../contract/messageEnvelope.ts';
import { decodeInlineBody, parseQueueMessage, type QueueMessage } from '../../contract/queueMessage.ts';
import { agentConfigSchema, type AgentConfigInput } from '../../edge-agent/config/agentConfigSchema.ts';
import { cloudNoticeTo } from '../../edge-agent/notices/cloudNoticeTo.ts';
import { startLocalS3, type LocalS3 } from '../../testbed/aws/localS3.ts';
import { startLocalSqs, type LocalSqs } from '../../testbed/aws/localSqs.ts';
import { sendRaw, startTestAgent, type TestAgent } from '../../testbed/helpers/agentHarness.ts';
import { pollUntil } from '../../testbed/helpers/pollUntil.ts';
import { sha256Hex } from '../../testbed/helpers/scannerEnvelope.ts';

const ADMIN = 'ops@contoso.com';
const scanner = { client: { name: 'scanner', ip: '192.0.2.10' } };
const plainHeader = Buffer.from('From: scanner@contoso.com\r\nSubject: Scan\r\n\r\n');

function configWith(input: AgentConfigInput) {
  return agentConfigSchema.parse({ queue: { kind: 'local' }, ...input });
}

/** Who the agent names for the cloud's notice: the office box's rules (noticeTargets), decided at handoff. */
describe('cloudNoticeTo: the addresses the agent puts in envelope.noticeTo', () => {
  it('names the sender for a device with notices: sender, and the sender and the admin with both', () => {
    const config = configWith({
      notices: { admin: ADMIN, notify: 'none' },
      clients: [
        { name: 'scanner', address: '192.0.2.10', notices: 'sender' },
        { name: 'nas', address: '192.0.2.20', notices: 'both' },
      ],
    });
    assert.deepEqual(cloudNoticeTo(config, { ...scanner, mailFrom: 'scanner@contoso.com' }, plainHeader), { to: ['scanner@contoso.com'], suppressed: [] });
    assert.deepEqual(cloudNoticeTo(config, { client: { name: 'nas', ip: '192.0.2.20' }, mailFrom: 'nas@contoso.com' }, plainHeader), { to: ['nas@contoso.com', ADMIN], suppressed: [] });
    // A device without its own setting follows notices.notify: none here.
    assert.deepEqual(cloudNoticeTo(config, { client: { name: 'ups', ip: '192.0.2.30' }, mailFrom: 'ups@contoso.com' }, plainHeader).to, []);
  });

  it('leaves out a sender of notices.undeliverableDomains (the admin of both still gets one)', () => {
    const config = configWith({ notices: { admin: ADMIN, notify: 'both', undeliverableDomains: ['scanner.local'] } });
    const targets = cloudNoticeTo(config, { ...scanner, mailFrom: 'scan@Scanner.Local' }, plainHeader);
    assert.deepEqual(targets.to, [ADMIN]);
    assert.deepEqual(targets.suppressed, ["the sender's domain scanner.local is in notices.undeliverableDomains"]);
  });

  it('names nobody for a message from <> or one a program generated', () => {
    const config = configWith({ notices: { admin: ADMIN, notify: 'both' } });
    assert.deepEqual(cloudNoticeTo(config, { ...scanner, mailFrom: '' }, plainHeader), { to: [], suppressed: ['the sender is <> (a notice is never answered with a notice)'] });
    const automatic = cloudNoticeTo(config, { ...scanner, mailFrom: 'ups@contoso.com' }, Buffer.from('Auto-Submitted: auto-generated\r\n\r\n'));
    assert.deepEqual(automatic.to, []);
    assert.match(automatic.suppressed[0] ?? '', /Auto-Submitted/);
  });

  it('leaves out a sender the queue contract cannot carry instead of holding the message back', () => {
    const config = configWith({ notices: { admin: ADMIN, notify: 'both' } });
    const targets = cloudNoticeTo(config, { ...scanner, mailFrom: 'scanner@localhost' }, plainHeader);
    assert.deepEqual(targets.to, [ADMIN]);
    assert.deepEqual(targets.suppressed, ['scanner@localhost is not an address the queue message can carry']);
    assert.ok(targets.to.length <= MAX_NOTICE_TO);
  });
});

describe('the cloud agent hands noticeTo over in the queue message', () => {
  let sqs: LocalSqs;
  let s3: LocalS3;
  let agent: TestAgent | undefined;

  before(async () => {
    [sqs, s3] = await Promise.all([startLocalSqs({ visibilityTimeout: 30, maxReceiveCount: 10 }), startLocalS3()]);
  });
  afterEach(async () => {
    await agent?.dispose();
    agent = undefined;
  });
  after(async () => {
    await Promise.all([sqs?.stop(), s3?.stop()]);
  });

  async function startCloudAgent(input: AgentConfigInput): Promise<TestAgent> {
    agent = await startTestAgent(
      // 1 KiB inline: the large scan below goes by S3, its header read from the spool all the same.
      { queue: { kind: 'sqs', sqs: { queueUrl: sqs.queueUrl, bucket: s3.bucket, region: 'us-east-1', inlineMaxBytes: '1KiB' } }, ...input } as AgentConfigInput,
      { aws: { sqs: sqs.client, s3: s3.client, cloudWatch: { send: async () => ({}) } as never }, forwarder: { initialBackoffMs: 50, maxBackoffMs: 200 } },
    );
    return agent;
  }

  /** Sends each message through the agent and returns the queue messages, by the device's sender. */
  async function handOver(relay: TestAgent, sends: { from: string; raw: string }[]): Promise<Map<string, QueueMessage>> {
    for (const send of sends) await sendRaw(relay.address.port, send.from, ['you@contoso.com'], send.raw);
    const received = new Map<string, QueueMessage>();
    await pollUntil(
      async () => {
        const { Messages } = await sqs.client.send(new ReceiveMessageCommand({ QueueUrl: sqs.queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 0 }));
        for (const message of Messages ?? []) {
          const parsed = parseQueueMessage(message.Body ?? '');
          received.set(parsed.envelope.mailFrom, parsed);
          await sqs.client.send(new DeleteMessageCommand({ QueueUrl: sqs.queueUrl, ReceiptHandle: message.ReceiptHandle }));
        }
        return received.size === sends.length;
      },
      15_000,
      `${sends.length} queue messages`,
    );
    return received;
  }

  const scan = (from: string, extra = '') => `From: ${from || 'ups@contoso.com'}\r\nTo: you@contoso.com\r\nSubject: Scan\r\n${extra}\r\nPage 1.\r\n`;

  it('names the sender (and the admin) for a device with notices: both, not an undeliverable domain nor <>', async () => {
    const relay = await startCloudAgent({
      notices: { admin: ADMIN, notify: 'none', undeliverableDomains: ['scanner.local'] },
      clients: [{ name: 'scanner', address: '127.0.0.1', notices: 'both' }],
    });
    const messages = await handOver(relay, [
      { from: 'scanner@contoso.com', raw: scan('scanner@contoso.com') },
      { from: 'big@contoso.com', raw: scan('big@contoso.com', `X-Filler: ${'x'.repeat(900)}\r\n`) + 'y'.repeat(4096) + '\r\n' },
      { from: 'scan@scanner.local', raw: scan('scan@scanner.local') },
      { from: '', raw: scan('') },
    ]);
    assert.deepEqual(messages.get('scanner@contoso.com')?.envelope.noticeTo, ['scanner@contoso.com', ADMIN]);
    // The inline body (read once for its header and the message) is the spooled one, byte for byte.
    const inline = messages.get('scanner@contoso.com');
    assert.equal(inline?.body.kind, 'inline');
    assert.equal(inline.body.kind === 'inline' && sha256Hex(decodeInlineBody(inline.body)), inline.envelope.sha256);
    assert.equal(messages.get('big@contoso.com')?.body.kind, 's3');
    assert.deepEqual(messages.get('big@contoso.com')?.envelope.noticeTo, ['big@contoso.com', ADMIN]);
    assert.deepEqual(messages.get('scan@scanner.local')?.envelope.noticeTo, [ADMIN]);
    const nullSender = messages.get('')?.envelope;
    assert.ok(nullSender);
    assert.equal('noticeTo' in nullSender, false);
  });

  it('names nobody without a notices block: the queue message has no noticeTo', async () => {
    const relay = await startCloudAgent({ clients: [{ name: 'scanner', address: '127.0.0.1' }] });
    const messages = await handOver(relay, [{ from: 'scanner@contoso.com', raw: scan('scanner@contoso.com') }]);
    const envelope = messages.get('scanner@contoso.com')?.envelope;
    assert.ok(envelope);
    assert.equal('noticeTo' in envelope, false);
  });
});
