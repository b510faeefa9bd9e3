import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { SizeLimit } from '../../edge-agent/intake/sizeLimit.ts';
import { SmtpReplyError } from '../../edge-agent/smtpReplyError.ts';

/** Writes the chunks and collects what passed, and the error the limit ended with. */
async function run(maxBytes: number, chunks: readonly Buffer[]): Promise<{ output: Buffer; error: unknown }> {
  const limit = new SizeLimit(maxBytes);
  const out: Buffer[] = [];
  limit.on('data', (chunk: Buffer) => out.push(chunk));
  const finished = new Promise<unknown>((resolve) => {
    limit.once('end', () => resolve(undefined));
    limit.once('error', resolve);
  });
  for (const chunk of chunks) {
    limit.write(chunk);
  }
  limit.end();
  return { error: await finished, output: Buffer.concat(out) };
}

const filled = (length: number) => Buffer.alloc(length, 0x61);

describe('SizeLimit', () => {
  test('a body of exactly the limit passes through unchanged', async () => {
    const body = Buffer.concat([filled(600), filled(400)]);
    const result = await run(1000, [body.subarray(0, 600), body.subarray(600)]);
    assert.equal(result.error, undefined);
    assert.deepEqual(result.output, body);
  });

  test('one byte over the limit fails with 552 5.3.4', async () => {
    const result = await run(1000, [filled(1001)]);
    assert.ok(result.error instanceof SmtpReplyError);
    assert.equal(result.error.reply, '552 5.3.4 Message size exceeds fixed maximum message size');
  });

  test('counts across chunks and passes nothing of the chunk that crosses the limit', async () => {
    const result = await run(1000, [filled(500), filled(500), filled(1)]);
    assert.ok(result.error instanceof SmtpReplyError);
    assert.equal(result.error.responseCode, 552);
    assert.ok(result.output.length <= 1000, `passed ${result.output.length} bytes`);
  });

  test('an empty body passes', async () => {
    const result = await run(1, []);
    assert.equal(result.error, undefined);
    assert.equal(result.output.length, 0);
  });
});
