import assert from 'node:assert/strict';
import { SMTPStream } from 'smtp-server/lib/smtp-stream.js';
import { describe, test } from 'node:test';
import { dataFeeders, installDataScanner } from '../../edge-agent/intake/smtp-server-patches/dataScanner.ts';
import { parseWith as parse } from '../../testbed/helpers/smtpStreamDriver.ts';
import { integerFromEnv, SeededRandom } from '../../testbed/helpers/seededRandom.ts';

/**
 * The DATA scanner must do exactly what smtp-server's own method does: the same bodies, the same
 * end of DATA, the same commands read after it, however the bytes are split into chunks. Both are
 * fed the same random inputs and splits, with the alphabet that matters (CR, LF, dot) dense.
 */
const SEED = integerFromEnv('SMARTHOST_FUZZ_SEED', 20_261_128);
const CASES = integerFromEnv('SMARTHOST_FUZZ_ITERATIONS', 60) * 50;

const installed = installDataScanner();
const { original, scanner } = dataFeeders();

function split(random: SeededRandom, bytes: Buffer, maxChunk: number): Buffer[] {
  const chunks: Buffer[] = [];
  for (let at = 0; at < bytes.length; ) {
    const size = random.int(1, maxChunk);
    chunks.push(bytes.subarray(at, at + size));
    at += size;
  }
  return chunks;
}

const PIECES = ['\r', '\n', '.', 'x', '\r\n', '\r\n.', '..', '\r\n.\r\n', '\r\n..\r\n', '.\r\n', '\n.\n', 'NOOP\r\n'];
// No second DATA in one input: smtp-server's continue() drops a continuation set while it runs
// (a whole transaction pipelined behind a message), so both versions stall there alike.

function soup(random: SeededRandom, pieces: number): string {
  let text = '';
  for (let i = 0; i < pieces; i++) {
    text += random.chance(0.3) ? random.pick(PIECES) : 'x'.repeat(random.int(1, 6));
  }
  return text;
}

async function assertSame(input: Buffer, chunks: Buffer[], label: string): Promise<void> {
  const expected = await parse(original, chunks);
  const actual = await parse(scanner, chunks);
  const what = `${label}: ${JSON.stringify(input.toString('binary'))} in chunks of ${chunks.map((c) => c.length).join(',')}`;
  // A body the input leaves unfinished is never stored (the connection ends without its
  // terminator). smtp-server keeps its last 4 bytes back; the scanner may pass bytes on sooner.
  const open = expected.bodies.at(-1);
  const openActual = actual.bodies.at(-1);
  if (open && !open.ended && openActual && !openActual.ended) {
    assert.ok(openActual.body.startsWith(open.body) && openActual.body.length - open.body.length <= 4, `${what}: unfinished body ${JSON.stringify(openActual.body)}`);
    openActual.body = open.body;
  }
  assert.deepEqual(actual, expected, what);
}

describe('DATA scanner (edge-agent/intake/smtp-server-patches/dataScanner.ts) against smtp-server', () => {
  test('is installed on smtp-server\'s parser', () => {
    assert.equal(installed, true, 'smtp-server no longer has the internals the scanner relies on');
    assert.equal(SMTPStream.prototype._feedDataStream, scanner);
    assert.notEqual(original, scanner);
  });

  test('the cases that end or do not end DATA, split at every position', async () => {
    const inputs = [
      'DATA\r\n.\r\nNOOP\r\n',
      'DATA\r\n..\r\n.\r\nNOOP\r\n',
      'DATA\r\n...\r\n.\r\n',
      'DATA\r\nabc\r\n.\r\nQUIT\r\n',
      'DATA\r\nabc\r\n..x\r\n.\r\n',
      'DATA\r\n\r\n.\r\nNOOP\r\n.\r\n',
      'DATA\r\nabc\n.\r\nmore\r\n.\r\n',
      'DATA\r\nabc\r\n.\nmore\r\n.\r\n',
      'DATA\r\nabc\r.\r\n.\r\n',
      'DATA\r\n.x\r\n.\r\n',
      'DATA\r\nxyzw\n..a\r\n.\r\n',
      'DATA\r\nline\r\n.\r\nMAIL FROM:<a@b>\r\n..\r\n.\r\n',
    ];
    for (const text of inputs) {
      const input = Buffer.from(text, 'binary');
      for (let cut = 1; cut < input.length; cut++) {
        await assertSame(input, [input.subarray(0, cut), input.subarray(cut)], 'two chunks');
      }
      await assertSame(input, [...input].map((byte) => Buffer.from([byte])), 'byte by byte');
    }
  });

  test(`random bodies and splits (${CASES} cases, seed ${SEED})`, async () => {
    const random = new SeededRandom(SEED);
    for (let i = 0; i < CASES; i++) {
      const input = Buffer.from('DATA\r\n' + soup(random, random.int(0, 40)) + (random.chance(0.8) ? '\r\n.\r\n' + soup(random, 5) : ''), 'binary');
      await assertSame(input, split(random, input, random.pick([1, 3, 8, 40, 400])), `case ${i}`);
    }
  });

  test('large bodies in socket-sized chunks, dot lines and line ends at every chunk boundary', async () => {
    const random = new SeededRandom(SEED + 1);
    for (let i = 0; i < 20; i++) {
      const lines: string[] = [];
      while (lines.length < 3000) lines.push(random.chance(0.1) ? '.' + soup(random, 3) : 'x'.repeat(random.int(0, 90)));
      const input = Buffer.from('DATA\r\n' + lines.join(random.chance(0.5) ? '\r\n' : '\n') + '\r\n.\r\nQUIT\r\n', 'binary');
      await assertSame(input, split(random, input, 65_536), `large ${i}`);
    }
  });
});
