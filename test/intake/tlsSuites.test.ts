import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect as netConnect } from 'node:net';
import { connect as tlsConnect, getCiphers, type TLSSocket } from 'node:tls';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { startTestAgent, type TestAgent } from '../../testbed/helpers/agentHarness.ts';
import { ReplyLines } from '../../testbed/helpers/replyLines.ts';
import { caPem } from '../../testbed/fakes/tlsFixtures.ts';
import { MODERN_CIPHERS } from '../../edge-agent/intake/tlsSuites.ts';

const tlsFile = (name: string) => fileURLToPath(new URL(`../../testbed/fixtures/tls/${name}`, import.meta.url));
const CLIENTS = [{ name: 'office-printer', address: '127.0.0.1' }];

/**
 * EHLO and STARTTLS in plaintext, then a TLS 1.2 handshake by Node's own client offering only
 * `cipher` (at OpenSSL security level 0, so the client itself refuses nothing). Resolves to the
 * suite agreed, or to the handshake error.
 */
async function handshake(port: number, cipher: string, maxVersion: 'TLSv1' | 'TLSv1.2' = 'TLSv1.2'): Promise<{ cipher?: string; error?: Error }> {
  const socket = netConnect({ host: '127.0.0.1', port });
  const split = new ReplyLines();
  const replies: string[] = [];
  let waiting: (() => void) | undefined;
  const onData = (chunk: Buffer) => {
    replies.push(...split.push(chunk));
    waiting?.();
  };
  socket.on('data', onData);
  const next = async (): Promise<string> => {
    while (replies.length === 0) await new Promise<void>((resolve) => (waiting = resolve));
    return replies.shift() as string;
  };
  assert.match(await next(), /^220 /);
  socket.write('EHLO device.test\r\n');
  assert.match(await next(), /^250 /);
  socket.write('STARTTLS\r\n');
  assert.match(await next(), /^220 /);
  socket.removeListener('data', onData);
  const secure: TLSSocket = tlsConnect({ socket, ca: caPem, servername: 'localhost', ciphers: `${cipher}@SECLEVEL=0`, minVersion: maxVersion === 'TLSv1' ? 'TLSv1' : 'TLSv1.2', maxVersion });
  try {
    await once(secure, 'secureConnect');
    return { cipher: secure.getCipher().standardName ?? secure.getCipher().name };
  } catch (error) {
    return { error: error as Error };
  } finally {
    secure.destroy();
    socket.destroy();
  }
}

/** TLS 1.2 suites Node's default list (and so smtp-server's) offered, each of a kind testssl.sh flags. */
const WEAK_SUITES: [string, string][] = [
  ['AES128-GCM-SHA256', 'static RSA key exchange (no forward secrecy)'],
  ['AES256-SHA256', 'static RSA key exchange with CBC'],
  ['ECDHE-RSA-AES128-SHA', 'CBC with SHA-1'],
  ['ECDHE-RSA-AES256-SHA384', 'CBC with SHA-384'],
  ['DHE-RSA-AES128-GCM-SHA256', 'finite-field DHE'],
  // In the `HIGH` of Node's list where its OpenSSL builds them (Node 24; not Node 20's).
  ...([
    ['AES128-CCM8', 'CCM8 (64-bit tags)'],
    ['ECDHE-ARIA128-GCM-SHA256', 'ARIA'],
  ] as [string, string][]).filter(([suite]) => getCiphers().includes(suite.toLowerCase())),
];

describe('TLS suites offered to devices', () => {
  let agent: TestAgent;
  let legacy: TestAgent;

  before(async () => {
    const tls = { cert: tlsFile('server.crt'), key: tlsFile('server.key') };
    agent = await startTestAgent({ clients: CLIENTS, listen: { tls } });
    legacy = await startTestAgent({ clients: CLIENTS, listen: { tls: { ...tls, minVersion: 'TLSv1' } } });
  });

  after(async () => {
    await agent?.dispose();
    await legacy?.dispose();
  });

  test('the default list names TLS 1.3 suites and, for TLS 1.2, ECDHE with AES-GCM or ChaCha20-Poly1305 only', () => {
    for (const suite of MODERN_CIPHERS.split(':')) {
      assert.match(suite, /^TLS_(AES_(128|256)_GCM_SHA(256|384)|CHACHA20_POLY1305_SHA256)$|^ECDHE-(RSA|ECDSA)-(AES(128|256)-GCM-SHA(256|384)|CHACHA20-POLY1305)$/);
    }
  });

  for (const suite of ['ECDHE-RSA-AES128-GCM-SHA256', 'ECDHE-RSA-AES256-GCM-SHA384', 'ECDHE-RSA-CHACHA20-POLY1305']) {
    test(`the default accepts ${suite}`, async () => {
      const { cipher, error } = await handshake(agent.address.port, suite);
      assert.equal(error, undefined);
      assert.match(cipher ?? '', /^TLS_ECDHE_RSA_WITH_/);
    });
  }

  for (const [suite, kind] of WEAK_SUITES) {
    test(`the default refuses ${suite} (${kind}) and logs the client's address and rule name`, async () => {
      const mark = agent.logs.lines.length;
      const { cipher, error } = await handshake(agent.address.port, suite);
      assert.equal(cipher, undefined, `agreed on ${cipher}`);
      assert.ok(error, 'the handshake failed');
      let logged: Record<string, unknown> | undefined;
      for (let i = 0; i < 50 && !logged; i++) {
        logged = agent.logs.records().slice(mark).find((r) => r.msg === 'TLS handshake failed');
        if (!logged) await new Promise((resolve) => setTimeout(resolve, 20));
      }
      assert.ok(logged, `no "TLS handshake failed" line in ${JSON.stringify(agent.logs.lines.slice(mark))}`);
      assert.equal(logged.ip, '127.0.0.1');
      assert.equal(logged.client, 'office-printer');
      assert.equal(logged.level, 40);
    });
  }

  test('minVersion TLSv1 (old printers) still accepts a CBC-SHA1 suite with static RSA over TLS 1.0', async () => {
    const { cipher, error } = await handshake(legacy.address.port, 'AES128-SHA', 'TLSv1');
    assert.equal(error, undefined);
    assert.equal(cipher, 'TLS_RSA_WITH_AES_128_CBC_SHA');
  });
});
