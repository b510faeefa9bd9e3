import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startTestAgent, type TestAgent } from '../../testbed/helpers/agentHarness.ts';
import { openSession, queuedId, quit, sendMessage } from './helpers/smtpSession.ts';

const refused = (domain: string) => `550 5.7.1 Sender domain ${domain} is not allowed to relay`;

describe('senders.allowedDomains', () => {
  let agent: TestAgent;

  before(async () => {
    agent = await startTestAgent({ senders: { allowedDomains: ['contoso.com'] } });
  });

  after(async () => {
    await agent?.dispose();
  });

  test('a sender in an allowed domain is accepted at MAIL FROM, whatever its case', async () => {
    const client = await openSession(agent.address.port);
    assert.equal(await client.command('MAIL FROM:<scanner@contoso.com>'), '250 Accepted');
    assert.equal(await client.command('RSET'), '250 Flushed');
    assert.equal(await client.command('MAIL FROM:<Scanner@CONTOSO.COM>'), '250 Accepted');
    await quit(client);
  });

  test('a sender in another domain is refused at MAIL FROM with 550 5.7.1 and logged', async () => {
    const client = await openSession(agent.address.port);
    assert.equal(await client.command('MAIL FROM:<scanner@fabrikam.com>'), refused('fabrikam.com'));
    assert.equal(await client.command('MAIL FROM:<scanner@sub.contoso.com>'), refused('sub.contoso.com'), 'a subdomain is another domain');
    assert.equal(await client.command('MAIL FROM:<scanner@contoso.com.evil.example>'), refused('contoso.com.evil.example'));
    assert.equal(await client.command('RCPT TO:<alice@contoso.com>'), '503 Error: need MAIL command', 'no transaction was opened');
    await quit(client);
    assert.ok(agent.logs.records().some((r) => r.level === 40 && r.msg === 'sender refused: domain not allowed' && r.domain === 'fabrikam.com'));
  });

  test('the null sender <> is accepted and its message queued', async () => {
    const client = await openSession(agent.address.port);
    const id = queuedId(await sendMessage(client, '', ['alice@contoso.com'], 'Subject: delivery report\r\n\r\nreport\r\n'));
    await agent.deliveryLoop.whenIdle();
    const envelope = JSON.parse(await readFile(join(agent.config.outbox.dir, `${id}.envelope.json`), 'utf8')) as { mailFrom: string };
    assert.equal(envelope.mailFrom, '');
    await quit(client);
  });
});

describe('senders.allowedDomains with a client sendAs', () => {
  let agent: TestAgent;

  before(async () => {
    agent = await startTestAgent({
      senders: { allowedDomains: ['contoso.com'] },
      clients: [
        { name: 'fax', address: '127.0.0.1', sendAs: 'FaxService@contoso.com' },
        { name: 'misconfigured', address: '127.0.0.2', sendAs: 'fax@fabrikam.com' },
      ],
    });
  });

  after(async () => {
    await agent?.dispose();
  });

  test('the rewritten sender is checked: a device sender outside the domains passes when sendAs is inside', async () => {
    const client = await openSession(agent.address.port);
    const id = queuedId(await sendMessage(client, 'fax@printer.local', ['alice@contoso.com'], 'From: fax@printer.local\r\nSubject: fax\r\n\r\npage\r\n'));
    await agent.deliveryLoop.whenIdle();
    const envelope = JSON.parse(await readFile(join(agent.config.outbox.dir, `${id}.envelope.json`), 'utf8')) as { mailFrom: string };
    assert.equal(envelope.mailFrom, 'FaxService@contoso.com');
    await quit(client);
  });

  test('the rewritten sender is checked: a device sender inside the domains is refused when sendAs is outside', async () => {
    const client = await openSession(agent.address.port, { localAddress: '127.0.0.2' });
    assert.equal(await client.command('MAIL FROM:<scanner@contoso.com>'), refused('fabrikam.com'));
    assert.equal(await client.command('MAIL FROM:<>'), refused('fabrikam.com'), 'the null sender is rewritten too');
    await quit(client);
  });
});
