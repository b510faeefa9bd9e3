import type { SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { awsTestEnv, type AwsStandInEndpoints } from '../../testbed/aws/awsTestEnv.ts';
import { captureLambdaOutput, type LambdaOutput } from './lambdaOutput.ts';
import type { lambdaContext } from './sqsEvents.ts';

export type Handler = (event: SQSEvent, context: ReturnType<typeof lambdaContext>) => Promise<SQSBatchResponse>;

export const FUNCTION_NAME = 'smarthost-delivery';

export interface LambdaUnderTest {
  handler: Handler;
  output: LambdaOutput;
  /** Stops capturing its output and puts process.env back as it was. */
  restore(): void;
}

/**
 * The delivery Lambda (functions/lambda/handler.ts) imported as the runtime would start it: the
 * environment holds the stand-ins' endpoints and the function variables the CDK app sets (`vars`),
 * and nothing of the developer's own AWS or Powertools settings. The handler reads its
 * environment when it is imported, so each test file (its own process) imports it once.
 */
export async function importLambda(endpoints: AwsStandInEndpoints, vars: Record<string, string>): Promise<LambdaUnderTest> {
  const saved = { ...process.env };
  for (const name of Object.keys(process.env)) {
    if (name.startsWith('AWS_') || name.startsWith('POWERTOOLS_')) delete process.env[name];
  }
  Object.assign(process.env, awsTestEnv(endpoints), vars, { AWS_LAMBDA_FUNCTION_NAME: FUNCTION_NAME });
  const output = captureLambdaOutput(FUNCTION_NAME);
  const { handler } = (await import('../../functions/lambda/handler.ts')) as { handler: Handler };
  return {
    handler,
    output,
    restore() {
      output.restore();
      for (const name of Object.keys(process.env)) if (!(name in saved)) delete process.env[name];
      Object.assign(process.env, saved);
    },
  };
}
