import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { traceQueryOf, traceSearch } from '../../cli/trace.ts';
import { sendRaw, startTestAgent, waitForAttempt, type TestAgent } from '../../testbed/helpers/agentHarness.ts';

/** `smarthost trace --message-id | --from | --to`: "did the fax of 9:05 reach Alice?" over the retained history. */

function collect(): { stream: PassThrough; text: () => string } {
  const stream = new PassThrough();
  const chunks: Buffer[] = [];
  stream.on('data', (chunk: Buffer) => chunks.push(chunk));
  return { stream, text: () => Buffer.concat(chunks).toString('utf8') };
}

const fax = (to: string, id: string) => `From: fax@contoso.com\r\nTo: ${to}\r\nSubject: Fax 09:05\r\nMessage-ID: <${id}>\r\n\r\npage 1\r\n`;

describe('smarthost trace search', () => {
  let agent: TestAgent;
  let aliceId: string;

  before(async () => {
    agent = await startTestAgent();
    const delivered = waitForAttempt(agent, (r) => r.action === 'delivered');
    const reply = await sendRaw(agent.address.port, 'fax@contoso.com', ['alice@contoso.com'], fax('alice@contoso.com', 'fax-0905@fax.office'));
    aliceId = /queued as (\S+)/.exec(reply)?.[1] as string;
    await delivered;
    const second = waitForAttempt(agent, (r) => r.action === 'delivered' && r.id !== aliceId);
    await sendRaw(agent.address.port, 'scanner@contoso.com', ['bob@contoso.com'], fax('bob@contoso.com', 'scan-1@mfp'));
    await second;
  });
  after(() => agent.dispose());

  const search = async (values: Parameters<typeof traceQueryOf>[0]) => {
    const out = collect();
    const err = collect();
    const query = traceQueryOf(values);
    assert.equal(typeof query, 'object');
    const code = await traceSearch(agent.config, query as Exclude<typeof query, string>, out.stream, err.stream);
    return { code, out: out.text(), err: err.text() };
  };

  it('finds a done message by recipient and says it was delivered, and when', async () => {
    const { code, out } = await search({ to: 'ALICE@contoso' });
    assert.equal(code, 0);
    const lines = out.trimEnd().split('\n');
    assert.equal(lines.length, 3, out);
    assert.match(lines[0] as string, new RegExp(`^${aliceId}  \\S+Z  loopback \\(127\\.0\\.0\\.1\\)  from fax@contoso\\.com  to alice@contoso\\.com  Message-ID <fax-0905@fax\\.office>$`));
    assert.match(lines[1] as string, /^ {4}delivered to alice@contoso\.com at \d{4}-\d\d-\d\dT[\d:.]+Z$/);
    assert.equal(lines[2], '1 message; smarthost trace ID shows one\'s whole history');
  });

  it('finds a message by its Message-ID header, with or without angle brackets, and by sender', async () => {
    for (const id of ['<fax-0905@fax.office>', 'fax-0905@fax.office']) {
      const { code, out } = await search({ 'message-id': id });
      assert.equal(code, 0);
      assert.ok(out.startsWith(aliceId), out);
    }
    const { out } = await search({ from: 'scanner@' });
    assert.match(out, /to bob@contoso\.com  Message-ID <scan-1@mfp>\n/);
    assert.doesNotMatch(out, /alice/);
  });

  it('exits 1 when nothing matches, and refuses a bad --since', async () => {
    const { code, err } = await search({ to: 'carol@contoso.com', since: '1h' });
    assert.equal(code, 1);
    assert.equal(err, 'no message matches (searched the queue, the failed area and the history kept for spool.historyRetention)\n');
    assert.equal(traceQueryOf({ since: 'soon' }), "--since: expected a duration such as 2h, 30m or 3d, got 'soon'");
  });
});
