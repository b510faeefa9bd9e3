import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { BareNewlineError, LineEndingGuard, type BareNewlinePolicy } from '../../edge-agent/intake/lineEndings.ts';
import { SmtpReplyError } from '../../edge-agent/smtpReplyError.ts';

interface GuardRun {
  output: Buffer;
  sawBareNewline: boolean;
  error?: unknown;
}

/** Writes the chunks one by one and collects what comes out, and the error the guard ends with. */
async function run(policy: BareNewlinePolicy, chunks: readonly Buffer[]): Promise<GuardRun> {
  const guard = new LineEndingGuard(policy);
  const out: Buffer[] = [];
  guard.on('data', (chunk: Buffer) => out.push(chunk));
  const finished = new Promise<unknown>((resolve) => {
    guard.once('end', () => resolve(undefined));
    guard.once('error', resolve);
  });
  for (const chunk of chunks) {
    guard.write(chunk);
  }
  guard.end();
  const error = await finished;
  return { output: Buffer.concat(out), sawBareNewline: guard.sawBareNewline, error };
}

const bytes = (text: string) => Buffer.from(text, 'latin1');

/** Every way to cut the input in two (the empty cuts included), then one byte per chunk. */
function splits(input: Buffer): Buffer[][] {
  const ways: Buffer[][] = [];
  for (let at = 0; at <= input.length; at++) {
    ways.push([input.subarray(0, at), input.subarray(at)]);
  }
  ways.push([...input].map((byte) => Buffer.from([byte])));
  return ways;
}

const NORMALIZED: [name: string, input: string, output: string, sawBare: boolean][] = [
  ['CRLF text', 'a\r\nb\r\n', 'a\r\nb\r\n', false],
  ['empty body', '', '', false],
  ['bare LF line ends', 'a\nb\n', 'a\r\nb\r\n', true],
  ['bare CR line ends', 'a\rb\r', 'a\r\nb\r\n', true],
  ['CR CR LF', 'a\r\r\nb', 'a\r\n\r\nb', true],
  ['LF CR', 'a\n\rb', 'a\r\n\r\nb', true],
  ['fake end of data <LF>.<LF>', 'x\n.\ny\r\n', 'x\r\n.\r\ny\r\n', true],
  ['fake end of data <CR>.<CR>', 'x\r.\ry\r\n', 'x\r\n.\r\ny\r\n', true],
  ['fake end of data <CR><LF>.<LF>', 'x\r\n.\ny\r\n', 'x\r\n.\r\ny\r\n', true],
  ['fake end of data <LF>.<CR><LF>', 'x\n.\r\ny\r\n', 'x\r\n.\r\ny\r\n', true],
  ['trailing bare CR', 'a\r\nb\r', 'a\r\nb\r\n', true],
  ['lone CR', '\r', '\r\n', true],
  ['lone LF', '\n', '\r\n', true],
  ['8-bit bytes kept', 'caf\xe9\r\n\xff\n', 'caf\xe9\r\n\xff\r\n', true],
];

describe('LineEndingGuard in normalize mode', () => {
  for (const [name, input, expected, sawBare] of NORMALIZED) {
    test(`${name}: every line end comes out as CRLF, whatever the chunking`, async () => {
      for (const chunks of splits(bytes(input))) {
        const result = await run('normalize', chunks);
        const where = `chunks ${JSON.stringify(chunks.map((c) => c.toString('latin1')))}`;
        assert.equal(result.error, undefined, where);
        assert.equal(result.output.toString('latin1'), expected, where);
        assert.equal(result.sawBareNewline, sawBare, where);
      }
    });
  }

  test('a CR ending one chunk and the LF starting the next stay one line end', async () => {
    const result = await run('normalize', [bytes('one\r'), bytes('\ntwo\r'), bytes('\n')]);
    assert.equal(result.output.toString('latin1'), 'one\r\ntwo\r\n');
    assert.equal(result.sawBareNewline, false);
  });

  test('an empty chunk between a CR and its LF changes nothing', async () => {
    const result = await run('normalize', [bytes('one\r'), Buffer.alloc(0), bytes('\ntwo\r\n')]);
    assert.equal(result.output.toString('latin1'), 'one\r\ntwo\r\n');
    assert.equal(result.sawBareNewline, false);
  });
});

const INSPECTED: [name: string, input: string, bare: boolean][] = [
  ['CRLF text', 'a\r\nb\r\n', false],
  ['empty body', '', false],
  ['two CRLF lines', 'one\r\ntwo\r\n', false],
  ['bare LF', 'a\nb\r\n', true],
  ['bare CR', 'a\rb\r\n', true],
  ['LF first', '\nb\r\n', true],
  ['CR last', 'a\r\nb\r', true],
  ['CR CR LF', 'a\r\r\n', true],
  ['fake end of data <LF>.<LF>', 'x\n.\ny\r\n', true],
  ['fake end of data <CR>.<CR><LF>', 'x\r.\r\ny\r\n', true],
  ['fake end of data <CR><LF>.<CR>', 'x\r\n.\ry\r\n', true],
];

describe('LineEndingGuard in reject mode', () => {
  for (const [name, input, bare] of INSPECTED) {
    test(`${name}: bytes pass untouched and ${bare ? 'the stream fails with 550 5.6.0' : 'the stream ends cleanly'}, whatever the chunking`, async () => {
      for (const chunks of splits(bytes(input))) {
        const result = await run('reject', chunks);
        const where = `chunks ${JSON.stringify(chunks.map((c) => c.toString('latin1')))}`;
        assert.equal(result.output.toString('latin1'), input, where);
        assert.equal(result.sawBareNewline, bare, where);
        if (bare) {
          assert.ok(result.error instanceof BareNewlineError, where);
          assert.ok(result.error instanceof SmtpReplyError, where);
          assert.equal(result.error.reply, '550 5.6.0 Message contains a bare CR or LF; line ends must be CRLF', where);
        } else {
          assert.equal(result.error, undefined, where);
        }
      }
    });
  }

  test('an empty chunk between a CR and its LF is not a bare CR', async () => {
    const result = await run('reject', [bytes('one\r'), Buffer.alloc(0), bytes('\ntwo\r\n')]);
    assert.equal(result.error, undefined);
    assert.equal(result.sawBareNewline, false);
  });
});
