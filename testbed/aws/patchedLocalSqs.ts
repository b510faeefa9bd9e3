import { readFileSync } from 'node:fs';
import Module, { createRequire } from 'node:module';
import { dirname } from 'node:path';
import type * as LocalAwsSqs from 'local-aws-sqs';

/**
 * local-aws-sqs (pinned in package.json) with three behaviours made as real SQS has them; each
 * hid a bug of ours or made a test pass that fails against AWS:
 * - ChangeMessageVisibility does not count as a receive (the stand-in added 1 to
 *   ApproximateReceiveCount, so a message with visibility heartbeats reached the DLQ early);
 * - a long poll returns as soon as some messages are there, fewer than asked (the stand-in
 *   waited the whole WaitTimeSeconds unless MaxNumberOfMessages were present);
 * - ReceiveMessage honours `MessageSystemAttributeNames`, the SDK's current name for
 *   `AttributeNames` (the stand-in read only the deprecated one).
 * The package's bundle keeps these in private class fields, so the patch is a source rewrite at
 * load time, here and nowhere else. Each rewrite must match exactly once: an update of the
 * package that changes the code fails loudly here (and test/awsStandIns.test.ts checks the
 * behaviours), instead of silently losing the fix.
 */
const REWRITES: readonly { why: string; from: string; to: string }[] = [
  {
    why: 'ChangeMessageVisibility (the private hide method called with keepReceipt=true) is no receive',
    from: 'let n=Number(t.record.attributes.ApproximateReceiveCount)+1;',
    to: 'let n=Number(t.record.attributes.ApproximateReceiveCount)+(i?0:1);',
  },
  {
    why: 'a long poll ends after the first sweep that found any message',
    from: 'if(r.length==e){clearInterval(c),clearTimeout(n),o();break}}},10)',
    to: 'if(r.length==e)break}r.length&&(clearInterval(c),clearTimeout(n),o())},10)',
  },
  {
    why: 'MessageSystemAttributeNames counts as AttributeNames',
    from: 'let{VisibilityTimeout:e,WaitTimeSeconds:i,MaxNumberOfMessages:r,AttributeNames:n,MessageAttributeNames:o}=this.body,',
    to: 'let{VisibilityTimeout:e,WaitTimeSeconds:i,MaxNumberOfMessages:r,AttributeNames:n0,MessageSystemAttributeNames:n1,MessageAttributeNames:o}=this.body,n=n0||n1?[...(n0||[]),...(n1||[])]:void 0,',
  },
];

function load(): typeof LocalAwsSqs {
  const require = createRequire(import.meta.url);
  const filename = require.resolve('local-aws-sqs');
  let source = readFileSync(filename, 'utf8');
  for (const rewrite of REWRITES) {
    const count = source.split(rewrite.from).length - 1;
    if (count !== 1) {
      throw new Error(`local-aws-sqs changed: the patch "${rewrite.why}" matches ${count} times in ${filename}; re-check test/aws/patchedLocalSqs.ts`);
    }
    source = source.replace(rewrite.from, rewrite.to);
  }
  const patched = new Module(filename) as Module & { _compile(code: string, filename: string): void; paths: string[] };
  patched.filename = filename;
  patched.paths = (Module as unknown as { _nodeModulePaths(dir: string): string[] })._nodeModulePaths(dirname(filename));
  patched._compile(source, filename);
  return patched.exports as typeof LocalAwsSqs;
}

export const { createRequestHandler } = load();
