import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { deviceClient, startTestAgent, type TestAgent } from '../../testbed/helpers/agentHarness.ts';
import { RawSmtpClient } from '../../testbed/helpers/rawSmtpClient.ts';
import { ehloCapabilities, openSession, queuedId, quit, sendMessage } from './helpers/smtpSession.ts';

const WARN = 40;
const MESSAGE = 'From: device@contoso.com\r\nSubject: access\r\n\r\nhello\r\n';

/** The client rule name the intake logged for an accepted message. */
function acceptedClient(agent: TestAgent, id: string): unknown {
  return agent.logs.records().find((r) => r.msg === 'message accepted' && r.messageId === id)?.client;
}

async function sendFrom(agent: TestAgent, localAddress?: string): Promise<string> {
  const client = await openSession(agent.address.port, { localAddress });
  const id = queuedId(await sendMessage(client, 'device@contoso.com', ['alice@contoso.com'], MESSAGE));
  await quit(client);
  return id;
}

describe('access by source address', () => {
  let agent: TestAgent;

  before(async () => {
    agent = await startTestAgent({ clients: [{ name: 'scanner', address: '127.0.0.1' }] });
  });

  after(async () => {
    await agent?.dispose();
  });

  test('an address outside clients is refused at connect with 554 5.7.1 and a warning is logged', async () => {
    const client = await RawSmtpClient.open(agent.address.port, '127.0.0.2');
    assert.deepEqual(await client.read(1), ['554 5.7.1 127.0.0.2 is not allowed to relay through this server']);
    await client.whenClosed();
    const warning = agent.logs.records().find((r) => r.msg === 'connection refused: address is not in clients');
    assert.equal(warning?.level, WARN);
    assert.equal(warning?.ip, '127.0.0.2');
  });

  test('a listed address may relay', async () => {
    const id = await sendFrom(agent);
    assert.equal(acceptedClient(agent, id), 'scanner');
  });
});

describe('access with no clients configured', () => {
  let agent: TestAgent;

  before(async () => {
    agent = await startTestAgent({});
  });

  after(async () => {
    await agent?.dispose();
  });

  test('any loopback address may relay, as the loopback client', async () => {
    for (const localAddress of ['127.0.0.1', '127.0.0.2']) {
      const id = await sendFrom(agent, localAddress);
      assert.equal(acceptedClient(agent, id), 'loopback');
    }
  });
});

describe('access by CIDR rule', () => {
  let agent: TestAgent;
  let narrow: TestAgent;

  before(async () => {
    agent = await startTestAgent({
      clients: [
        { name: 'front-desk', address: '127.0.0.2' },
        { name: 'copy-room', address: '127.0.0.0/30' },
      ],
    });
    narrow = await startTestAgent({ clients: [{ name: 'pair', address: '127.0.0.0/31' }] });
  });

  after(async () => {
    await agent?.dispose();
    await narrow?.dispose();
  });

  test('an address inside a range gets that rule, and a device listed before its range keeps its own', async () => {
    assert.equal(acceptedClient(agent, await sendFrom(agent, '127.0.0.1')), 'copy-room');
    assert.equal(acceptedClient(agent, await sendFrom(agent, '127.0.0.2')), 'front-desk');
  });

  test('an address just outside a range is refused with 554 5.7.1', async () => {
    assert.equal(acceptedClient(narrow, await sendFrom(narrow, '127.0.0.1')), 'pair');
    const client = await RawSmtpClient.open(narrow.address.port, '127.0.0.2');
    assert.deepEqual(await client.read(1), ['554 5.7.1 127.0.0.2 is not allowed to relay through this server']);
    await client.whenClosed();
  });
});

const PASSWORD = 'helpdesk-pass-9f3e';
const plain = (user: string, pass: string) => Buffer.from(`\0${user}\0${pass}`).toString('base64');
const BAD_CREDENTIALS = '535 5.7.8 Authentication credentials invalid';

describe('AUTH for clients that have credentials', () => {
  let agent: TestAgent;

  before(async () => {
    agent = await startTestAgent({
      clients: [
        { name: 'helpdesk', address: '127.0.0.1', auth: { username: 'helpdesk', password: PASSWORD } },
        { name: 'scanner', address: '127.0.0.2' },
      ],
    });
  });

  after(async () => {
    await agent?.dispose();
  });

  test('EHLO offers AUTH PLAIN LOGIN to a client with auth and no AUTH to one without', async () => {
    const withAuth = await ehloCapabilities(agent.address.port, '127.0.0.1');
    assert.ok(withAuth.lines.includes('AUTH PLAIN LOGIN'), JSON.stringify(withAuth.lines));
    const without = await ehloCapabilities(agent.address.port, '127.0.0.2');
    assert.ok(!without.lines.some((l) => l.startsWith('AUTH')), JSON.stringify(without.lines));
  });

  test('a client without auth that sends AUTH anyway is told the command is not available', async () => {
    const client = await openSession(agent.address.port, { localAddress: '127.0.0.2' });
    assert.equal(await client.command(`AUTH PLAIN ${plain('x', 'y')}`), '500 Error: command not recognized');
    assert.equal(await client.command('MAIL FROM:<scanner@contoso.com>'), '250 Accepted');
    await quit(client);
  });

  test('a client with auth must authenticate before MAIL FROM: 530 5.7.0', async () => {
    const client = await openSession(agent.address.port);
    assert.equal(await client.command('MAIL FROM:<helpdesk@contoso.com>'), '530 5.7.0 Authentication required');
    await quit(client);
  });

  test('a wrong password gets 535 5.7.8 and the right one lets the client relay', async () => {
    const client = await openSession(agent.address.port);
    assert.equal(await client.command(`AUTH PLAIN ${plain('helpdesk', 'wrong')}`), BAD_CREDENTIALS);
    assert.equal(await client.command('MAIL FROM:<helpdesk@contoso.com>'), '530 5.7.0 Authentication required');
    assert.equal(await client.command(`AUTH PLAIN ${plain('helpdesk', PASSWORD)}`), '235 Authentication successful');
    queuedId(await sendMessage(client, 'helpdesk@contoso.com', ['alice@contoso.com'], MESSAGE));
    await quit(client);
  });

  test('AUTH LOGIN works too, and a wrong user name with the right password is refused', async () => {
    const b64 = (text: string) => Buffer.from(text).toString('base64');
    const client = await openSession(agent.address.port);
    assert.equal(await client.command('AUTH LOGIN'), '334 VXNlcm5hbWU6');
    assert.equal(await client.command(b64('someone-else')), '334 UGFzc3dvcmQ6');
    assert.equal(await client.command(b64(PASSWORD)), BAD_CREDENTIALS);
    assert.equal(await client.command('AUTH LOGIN'), '334 VXNlcm5hbWU6');
    assert.equal(await client.command(b64('helpdesk')), '334 UGFzc3dvcmQ6');
    assert.equal(await client.command(b64(PASSWORD)), '235 Authentication successful');
    await quit(client);
  });

  test('nodemailer as the device: right credentials relay, wrong ones fail with 535 5.7.8', async () => {
    const good = deviceClient(agent.address.port, { auth: { user: 'helpdesk', pass: PASSWORD } });
    const info = await good.sendMail({ envelope: { from: 'helpdesk@contoso.com', to: ['alice@contoso.com'] }, raw: MESSAGE });
    good.close();
    queuedId(info.response);
    const bad = deviceClient(agent.address.port, { auth: { user: 'helpdesk', pass: 'nope' } });
    await assert.rejects(bad.sendMail({ envelope: { from: 'helpdesk@contoso.com', to: ['alice@contoso.com'] }, raw: MESSAGE }), {
      responseCode: 535,
      response: BAD_CREDENTIALS,
    });
    bad.close();
  });

  test('the password never reaches the logs', () => {
    assert.ok(!agent.logs.text.includes(PASSWORD));
  });
});

describe('repeated AUTH failures are slowed down', () => {
  let agent: TestAgent;

  before(async () => {
    // An agent of its own: the throttle counts failures per address across connections.
    agent = await startTestAgent({ clients: [{ name: 'helpdesk', address: '127.0.0.1', auth: { username: 'helpdesk', password: PASSWORD } }] });
  });

  after(async () => {
    await agent?.dispose();
  });

  test('the third wrong password in a row is answered only after a delay', async () => {
    const client = await openSession(agent.address.port);
    const elapsed: number[] = [];
    for (let attempt = 0; attempt < 3; attempt++) {
      const started = performance.now();
      assert.equal(await client.command(`AUTH PLAIN ${plain('helpdesk', `guess-${attempt}`)}`), BAD_CREDENTIALS);
      elapsed.push(performance.now() - started);
    }
    // AuthThrottle's schedule is 0, 250, 500 ms; only lower bounds are safe to assert.
    assert.ok((elapsed[2] ?? 0) >= 450, `third failure answered after ${elapsed.map((ms) => ms.toFixed(0)).join(', ')} ms`);
    assert.ok((elapsed[2] ?? 0) > (elapsed[0] ?? 0) + 400, `slower than the first: ${elapsed.map((ms) => ms.toFixed(0)).join(', ')} ms`);
    await quit(client);
  });
});

describe('acceptAnyAuth', () => {
  let agent: TestAgent;

  before(async () => {
    agent = await startTestAgent({ clients: [{ name: 'old-printer', address: '127.0.0.1', acceptAnyAuth: true }] });
  });

  after(async () => {
    await agent?.dispose();
  });

  test('AUTH is offered and any credentials are accepted', async () => {
    const { lines } = await ehloCapabilities(agent.address.port);
    assert.ok(lines.includes('AUTH PLAIN LOGIN'), JSON.stringify(lines));
    const client = await openSession(agent.address.port);
    assert.equal(await client.command(`AUTH PLAIN ${plain('whoever', 'whatever')}`), '235 Authentication successful');
    queuedId(await sendMessage(client, 'printer@contoso.com', ['alice@contoso.com'], MESSAGE));
    await quit(client);
    const device = deviceClient(agent.address.port, { auth: { user: 'admin', pass: '1234' } });
    queuedId((await device.sendMail({ envelope: { from: 'printer@contoso.com', to: ['alice@contoso.com'] }, raw: MESSAGE })).response);
    device.close();
  });

  test('a client that does not authenticate may still relay', async () => {
    assert.equal(acceptedClient(agent, await sendFrom(agent)), 'old-printer');
  });
});
