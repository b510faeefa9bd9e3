import { readFileSync } from 'node:fs';
import { Template } from 'aws-cdk-lib/assertions';
import type { CloudAssembly } from 'aws-cdk-lib/cx-api';
import { createApp } from '../../../infra/createApp.ts';
import type { SmarthostStack } from '../../../infra/SmarthostStack.ts';
import { tempDir } from './tempDir.ts';

const CDK_JSON = new URL('../../../cdk.json', import.meta.url);

/** The context `npx cdk` gives the app: cdk.json's, so tests see the same feature flags. */
export function cdkJsonContext(): Record<string, unknown> {
  const config = JSON.parse(readFileSync(CDK_JSON, 'utf8')) as { context?: Record<string, unknown> };
  return { ...config.context };
}

/** No credentials, no CLI: the fallback account and this region. */
export const TEST_ENV: NodeJS.ProcessEnv = { CDK_DEFAULT_REGION: 'eu-west-1' };

export interface SynthResult {
  stack: SmarthostStack;
  template: Template;
  assembly: CloudAssembly;
}

const cache = new Map<string, SynthResult>();

/**
 * The stack synthesized with cdk.json's context plus `overrides` (as `-c key=value` would), with
 * the cdk-nag checks attached: synthesis throws on any unacknowledged finding. The delivery
 * function is bundled with the local esbuild, as in a real synth; each variant is synthesized
 * once per test file and shared.
 */
export function synthSmarthost(overrides: Record<string, unknown> = {}): SynthResult {
  const key = JSON.stringify(overrides);
  const cached = cache.get(key);
  if (cached) return cached;
  const { app, stack } = createApp({
    context: { ...cdkJsonContext(), ...overrides },
    env: TEST_ENV,
    outdir: tempDir('cdk.out'),
  });
  const assembly = app.synth();
  const result = { stack, template: Template.fromStack(stack), assembly };
  cache.set(key, result);
  return result;
}

/** The logical id of a construct's CloudFormation resource, for `Ref` / `Fn::GetAtt` matching. */
export function logicalIdOf(stack: SmarthostStack, construct: { node: { defaultChild?: unknown } }): string {
  return stack.getLogicalId(construct.node.defaultChild as never);
}

export const getAtt = (logicalId: string, attribute = 'Arn') => ({ 'Fn::GetAtt': [logicalId, attribute] });
export const ref = (logicalId: string) => ({ Ref: logicalId });
/** `arn-of-bucket/incoming/*` as CDK renders it. */
export const objectsUnder = (bucketLogicalId: string, pattern: string) => ({
  'Fn::Join': ['', [getAtt(bucketLogicalId), `/${pattern}`]],
});
