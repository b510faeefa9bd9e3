import assert from 'node:assert/strict';
import { createHash, createPublicKey, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { classifyReply } from '../../delivery/classifyReply.ts';
import { createUpstreamSubmitter } from '../../delivery/createUpstreamSubmitter.ts';
import { GRAPH_MAX_MIME_BYTES } from '../../delivery/graph/graphLimits.ts';
import { SubmitError, type Submitter } from '../../delivery/smtp/submission.ts';
import { parseUpstreamConfig } from '../../delivery/upstreamConfig.ts';
import { startFakeExchangeOnline, type FakeExchangeOnline } from '../../testbed/fakes/fakeExchangeOnline.ts';
import { MAIL_SEND_ROLE, startFakeGraph, type FakeGraph } from '../../testbed/fakes/fakeGraph.ts';
import { startFakeTokenEndpoint, type FakeTokenEndpoint } from '../../testbed/fakes/fakeTokenEndpoint.ts';
import { caPem } from '../../testbed/fakes/tlsFixtures.ts';

const TENANT = '11111111-2222-3333-4444-555555555555';
const APP = 'aaaaaaaa-0000-0000-0000-000000000001';
const SECRET = 'graph-large-secret';
const MAILBOX = 'relay@contoso.com';

/** A scanner's multipart message with a PDF-sized base64 attachment of about `bytes`. */
function scan(id: string, bytes: number): Buffer {
  const header = `From: ${MAILBOX}\r\nTo: you@contoso.com\r\nMessage-ID: <${id}@contoso.com>\r\nSubject: Scan\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="b1"\r\n\r\n--b1\r\nContent-Type: text/plain\r\n\r\nScanned document attached.\r\n--b1\r\nContent-Type: application/pdf; name="scan.pdf"\r\nContent-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename="scan.pdf"\r\n\r\n`;
  const b64 = randomBytes(Math.ceil((bytes * 3) / 4)).toString('base64').replace(/.{76}/g, '$&\r\n');
  return Buffer.concat([Buffer.from(header), Buffer.from(b64), Buffer.from('\r\n--b1--\r\n')]);
}
const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');
const message = (raw: Buffer) => ({ id: 'm', from: MAILBOX, to: ['you@contoso.com'], raw: Readable.from([raw]) });

describe('Graph route: messages too large for one request (a 20 MB scan)', () => {
  let tokens: FakeTokenEndpoint;
  let exo: FakeExchangeOnline;
  let graph: FakeGraph;
  let submitter: Submitter;
  const upstream = (graphBlock: Record<string, unknown>) => {
    const parsed = parseUpstreamConfig({
      route: 'graph',
      host: '127.0.0.1',
      port: exo.port,
      ca: caPem,
      graph: { baseUrl: graph.url, ...graphBlock },
      auth: { type: 'oauth2', tenantId: TENANT, clientId: APP, clientSecret: SECRET, authority: tokens.url, scope: 'https://graph.microsoft.com/.default', user: MAILBOX },
      rateLimit: { perMinute: 1000, connections: 3 },
    });
    assert.ok(parsed.ok, parsed.ok ? '' : parsed.problems.join('; '));
    return parsed.config;
  };

  before(async () => {
    tokens = await startFakeTokenEndpoint({ tenantId: TENANT, clients: { [APP]: { secret: SECRET, graphRoles: [MAIL_SEND_ROLE] } } });
    exo = await startFakeExchangeOnline({ tokenVerifier: tokens, internalDomains: ['contoso.com'], mailboxes: [MAILBOX, 'you@contoso.com'] });
    graph = await startFakeGraph({ mailboxes: [MAILBOX], publicKey: createPublicKey(tokens.publicKeyPem) });
  });
  after(async () => {
    await submitter?.close();
    await graph.close();
    await exo.close();
    await tokens.close();
  });

  test('largeMessages: smtp sends the 20 MB scan over SMTP AUTH as the same mailbox, byte for byte; small mail stays on Graph', async () => {
    submitter = createUpstreamSubmitter(upstream({ largeMessages: 'smtp', smtpScope: 'https://outlook.office365.com/.default' })).submitter;
    const big = scan('big', 20 * 1024 * 1024);
    assert.ok(big.length > GRAPH_MAX_MIME_BYTES);
    const result = await submitter.submit(message(big));
    assert.deepEqual(result.accepted, ['you@contoso.com']);
    assert.match(result.response ?? '', /^over SMTP \(\d+ bytes of MIME, more than one Graph request takes\): 250/);
    const [captured] = await exo.waitForMessages(1);
    assert.equal(captured?.sha256, sha256(big));
    assert.equal(captured?.auth?.user, MAILBOX);
    assert.equal(graph.requests.length, 0, 'Graph was not asked');

    const small = scan('small', 100 * 1024);
    assert.equal((await submitter.submit(message(small))).response, '202 Accepted (Graph sendMail)');
    assert.equal(sha256(graph.sent[0]?.mime ?? Buffer.alloc(0)), sha256(small));
    assert.equal(exo.messages.length, 1);
  });

  test('without largeMessages the 20 MB scan fails at once as too large, naming the setting, and nothing is sent', async () => {
    const plain = createUpstreamSubmitter(upstream({})).submitter;
    const before = { graph: graph.requests.length, exo: exo.messages.length };
    const error = await plain.submit(message(scan('big2', 20 * 1024 * 1024))).then(() => undefined, (e: unknown) => e);
    await plain.close();
    assert.ok(error instanceof SubmitError);
    assert.match(error.failure.response ?? '', /^552 5\.3\.4 Graph: /);
    const classified = classifyReply(error.failure);
    assert.equal(classified.kind, 'permanent');
    assert.match(classified.reason, /set upstream\.graph\.largeMessages: smtp/);
    assert.deepEqual({ graph: graph.requests.length, exo: exo.messages.length }, before);
  });
});
