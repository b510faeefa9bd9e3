import assert from 'node:assert/strict';
import { buffer } from 'node:stream/consumers';
import { describe, it } from 'node:test';
import { HeaderTooLargeError } from '../../delivery/headerSection.ts';
import { rewriteHeaderForSendAs } from '../../delivery/sendAsRewrite.ts';
import { rewriteMessageStream, rewriteStreamForSendAs } from '../../delivery/sendAsStream.ts';

const MESSAGE = Buffer.from('From: scanner@printer.local\r\nSubject: scan\r\n\r\nbody line 1\r\n\r\nbody line 2\r\n', 'latin1');

async function* chunks(bytes: Buffer, cuts: number[]): AsyncGenerator<Buffer> {
  let at = 0;
  for (const cut of cuts) {
    yield bytes.subarray(at, cut);
    at = cut;
  }
  yield bytes.subarray(at);
}

describe('rewriteStreamForSendAs', () => {
  const headerEnd = MESSAGE.indexOf('\r\n\r\n') + 4;
  const expected = Buffer.concat([rewriteHeaderForSendAs(MESSAGE.subarray(0, headerEnd), 'relay@contoso.com'), MESSAGE.subarray(headerEnd)]);

  it('gives the same bytes wherever the chunks are cut, the blank line included', async () => {
    for (let cut = 1; cut < MESSAGE.length; cut++) {
      const out = await buffer(rewriteStreamForSendAs(chunks(MESSAGE, [cut]), 'relay@contoso.com'));
      assert.ok(out.equals(expected), `cut at ${cut}`);
    }
  });

  it('treats a message with no blank line as all header', async () => {
    const headerOnly = Buffer.from('Subject: alert\r\n', 'latin1');
    const out = await buffer(rewriteStreamForSendAs(chunks(headerOnly, []), 'relay@contoso.com'));
    assert.ok(out.equals(rewriteHeaderForSendAs(headerOnly, 'relay@contoso.com')));
  });

  it('refuses a header that never ends within the limit instead of buffering it', async () => {
    const endless = Buffer.alloc(4096, 0x61);
    await assert.rejects(buffer(rewriteStreamForSendAs(chunks(endless, [1024, 2048, 3072]), 'relay@contoso.com', 2000)), HeaderTooLargeError);
  });

  it('without send-as passes a header that never ends on unchanged (the upstream judges it)', async () => {
    const endless = Buffer.concat([Buffer.from('X-A: 1\r\n'), Buffer.alloc(4096, 0x61)]);
    const out = await buffer(rewriteMessageStream(chunks(endless, [1024, 2048, 3072]), { add: ADD }, 2000));
    assert.ok(out.equals(endless));
  });

  it('gives a message without a header section one, wherever the chunks are cut', async () => {
    const text = Buffer.from('UPS on battery\r\nRuntime left: 12 min\r\n', 'latin1');
    const header = 'From: ups@site.example\r\nDate: Thu, 03 Dec 2026 19:53:50 +0000\r\nMessage-ID: <abcdefgh@site.example>\r\n\r\n';
    for (let cut = 0; cut <= text.length; cut++) {
      const out = await buffer(rewriteMessageStream(chunks(text, [cut]), { add: ADD }));
      assert.equal(out.toString('latin1'), header + text.toString('latin1'), `cut at ${cut}`);
    }
  });
});

const ADD = { sender: 'ups@site.example', date: 'Thu, 03 Dec 2026 19:53:50 +0000', messageId: 'abcdefgh@site.example' };
