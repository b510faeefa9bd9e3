import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startTestAgent, type TestAgent } from '../../testbed/helpers/agentHarness.ts';
import { BARE_CR_OR_LF, bareLfToCrlf, dataPayload } from './helpers/messageBytes.ts';
import { openSession, queuedId, quit, startData } from './helpers/smtpSession.ts';
import { readOutboxMessage } from '../../testbed/helpers/relayTrace.ts';

const FIXTURES = new URL('../fixtures/devices/', import.meta.url);
const names = (await readdir(FIXTURES)).filter((name) => name.endsWith('.eml')).sort();

/** Every address in the To, Cc and Bcc headers: the recipients a device would give in RCPT TO. */
function headerRecipients(message: Buffer): string[] {
  const head = message.toString('latin1').split(/\r?\n\r?\n/, 1)[0] ?? '';
  const fields = head.split(/\r?\n(?![ \t])/).filter((field) => /^(to|cc|bcc):/i.test(field));
  return fields.flatMap((field) => field.match(/[\w.+-]+@[\w-]+(?:\.[\w-]+)+/g) ?? []);
}

describe('device fixtures through the intake (bareNewlines: normalize)', () => {
  let agent: TestAgent;

  before(async () => {
    agent = await startTestAgent({ listen: { bareNewlines: 'normalize' } });
  });

  after(async () => {
    await agent?.dispose();
  });

  test('every fixture is covered', () => {
    assert.ok(names.length >= 6, `fixtures: ${names.join(', ')}`);
    assert.ok(names.includes('mfp-many-recipients-bcc-header.eml'));
  });

  /** Sends a fixture as a device would and returns what reached the outbox. */
  async function relay(fixture: Buffer, to: string[]): Promise<{ stored: Buffer; envelope: { mailFrom: string; rcptTo: string[] } }> {
    const client = await openSession(agent.address.port, { helo: 'device.contoso.local' });
    await startData(client, 'device@contoso.com', to);
    client.write(dataPayload(fixture));
    const [reply] = await client.read(1);
    const id = queuedId(reply ?? '');
    await quit(client);
    await agent.deliveryLoop.whenIdle();
    return {
      stored: await readOutboxMessage(agent.config.outbox.dir, id),
      envelope: JSON.parse(await readFile(join(agent.config.outbox.dir, `${id}.envelope.json`), 'utf8')) as { mailFrom: string; rcptTo: string[] },
    };
  }

  for (const name of names) {
    test(`${name} is accepted and kept byte for byte, bare LFs turned into CRLF`, async () => {
      const fixture = await readFile(new URL(name, FIXTURES));
      const recipients = headerRecipients(fixture);
      const to = recipients.length > 0 ? recipients : ['ops@contoso.com'];
      const { stored, envelope } = await relay(fixture, to);
      const expected = bareLfToCrlf(fixture);
      assert.ok(!BARE_CR_OR_LF.test(expected.toString('latin1')), 'the expectation itself has CRLF line ends only');
      assert.ok(stored.equals(expected), `stored ${stored.length} bytes, expected ${expected.length}`);
      assert.deepEqual({ mailFrom: envelope.mailFrom, rcptTo: envelope.rcptTo }, { mailFrom: 'device@contoso.com', rcptTo: to });
    });
  }

  test('the many-recipients fixture reaches all 32 recipients, Bcc included', async () => {
    const fixture = await readFile(new URL('mfp-many-recipients-bcc-header.eml', FIXTURES));
    const to = headerRecipients(fixture);
    assert.equal(new Set(to).size, 32);
    const { envelope } = await relay(fixture, to);
    assert.equal(envelope.rcptTo.length, 32);
    assert.deepEqual(envelope.rcptTo.slice(-2), ['manager@contoso.com', 'audit@contoso.com']);
  });
});
