import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { createTransport } from 'nodemailer';
import { startTestAgent, type TestAgent } from '../../testbed/helpers/agentHarness.ts';
import { caPem } from '../../testbed/fakes/tlsFixtures.ts';
import { ehloCapabilities, openSession, queuedId, quit } from './helpers/smtpSession.ts';

const tlsFile = (name: string) => fileURLToPath(new URL(`../../testbed/fixtures/tls/${name}`, import.meta.url));
const CLIENTS = [
  { name: 'helpdesk', address: '127.0.0.1', auth: { username: 'helpdesk', password: 'helpdesk-pass-9f3e' } },
  { name: 'scanner', address: '127.0.0.2' },
];

describe('STARTTLS without listen.tls', () => {
  let agent: TestAgent;

  before(async () => {
    agent = await startTestAgent({ clients: CLIENTS });
  });

  after(async () => {
    await agent?.dispose();
  });

  for (const localAddress of ['127.0.0.1', '127.0.0.2']) {
    test(`is neither offered nor served (smtp-server's built-in certificate is never used), ${localAddress === '127.0.0.1' ? 'with' : 'without'} client auth`, async () => {
      const { lines } = await ehloCapabilities(agent.address.port, localAddress);
      assert.ok(!lines.includes('STARTTLS'), JSON.stringify(lines));
      const client = await openSession(agent.address.port, { localAddress });
      assert.equal(await client.command('STARTTLS'), '500 Error: command not recognized');
      await quit(client);
    });
  }
});

describe('STARTTLS with listen.tls', () => {
  let agent: TestAgent;

  before(async () => {
    agent = await startTestAgent({ clients: CLIENTS, listen: { tls: { cert: tlsFile('server.crt'), key: tlsFile('server.key') } } });
  });

  after(async () => {
    await agent?.dispose();
  });

  for (const localAddress of ['127.0.0.1', '127.0.0.2']) {
    test(`is offered with the configured certificate, ${localAddress === '127.0.0.1' ? 'with' : 'without'} client auth`, async () => {
      const { lines } = await ehloCapabilities(agent.address.port, localAddress);
      assert.ok(lines.includes('STARTTLS'), JSON.stringify(lines));
      const device = createTransport({
        host: '127.0.0.1',
        port: agent.address.port,
        secure: false,
        requireTLS: true,
        localAddress,
        tls: { ca: caPem, servername: 'localhost' },
        ...(localAddress === '127.0.0.1' ? { auth: { user: 'helpdesk', pass: 'helpdesk-pass-9f3e' } } : {}),
      });
      try {
        const info = await device.sendMail({ envelope: { from: 'device@contoso.com', to: ['alice@contoso.com'] }, raw: 'Subject: tls\r\n\r\nsecret scan\r\n' });
        queuedId(info.response);
      } finally {
        device.close();
      }
    });
  }
});
