import * as z from 'zod';
import { durationOrOffSchema } from '../../config-toolkit/fieldSchemas.ts';
import { FUNCTION_ENV, FUNCTION_LEASE_MS } from '../../contract/cloudResources.ts';
import { DELAYED_NOTICE_AFTER } from '../../delivery/notices/noticeDefaults.ts';

export interface FunctionEnv {
  queueUrl: string;
  secretArn: string;
  deadLetterQueueUrl: string;
  ledgerTable: string;
  failureNoticeTo?: string;
  /** How long after arrival a held message gets its "Delayed" notice (ms); undefined: never. */
  delayedNoticeAfterMs?: number;
  secretTtlSeconds: number;
  instances: number;
  /** Claims last as long as the function may run, plus a margin. */
  leaseMs: number;
  /** The function's name, which the runtime sets (AWS_LAMBDA_FUNCTION_NAME); its notices' Reporting-MTA. */
  functionName?: string;
}

/** Thrown at cold start when the deployment left out or mangled a variable; names each one. */
export class FunctionEnvError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid function environment:\n  ${problems.join('\n  ')}`);
    this.name = 'FunctionEnvError';
  }
}

/** An empty variable means "not set", never 0 (which would turn the secret cache off). */
function emptyAsUnset(value: unknown): unknown {
  return value === '' ? undefined : value;
}

const schema = z.object({
  [FUNCTION_ENV.queueUrl]: z.url(),
  [FUNCTION_ENV.secretArn]: z.string().startsWith('arn:'),
  [FUNCTION_ENV.deadLetterQueueUrl]: z.url(),
  [FUNCTION_ENV.ledgerTable]: z.string().min(1),
  [FUNCTION_ENV.failureNoticeTo]: z.email().optional().or(z.literal('').transform(() => undefined)),
  [FUNCTION_ENV.delayedNoticeAfter]: z.preprocess(emptyAsUnset, durationOrOffSchema.prefault(DELAYED_NOTICE_AFTER)),
  [FUNCTION_ENV.secretTtlSeconds]: z.preprocess(emptyAsUnset, z.coerce.number().int().min(0).default(300)),
  [FUNCTION_ENV.instances]: z.preprocess(emptyAsUnset, z.coerce.number().int().min(1).default(1)),
});

/** Validates the delivery function's environment, reporting every problem with its variable name. */
export function readFunctionEnv(env: NodeJS.ProcessEnv): FunctionEnv {
  const result = schema.safeParse(env);
  if (!result.success) {
    throw new FunctionEnvError(result.error.issues.map((issue) => `${String(issue.path[0])}: ${issue.message}`));
  }
  const v = result.data;
  return {
    queueUrl: v[FUNCTION_ENV.queueUrl] as string,
    secretArn: v[FUNCTION_ENV.secretArn] as string,
    deadLetterQueueUrl: v[FUNCTION_ENV.deadLetterQueueUrl] as string,
    ledgerTable: v[FUNCTION_ENV.ledgerTable] as string,
    failureNoticeTo: v[FUNCTION_ENV.failureNoticeTo] as string | undefined,
    ...(typeof v[FUNCTION_ENV.delayedNoticeAfter] === 'number' ? { delayedNoticeAfterMs: v[FUNCTION_ENV.delayedNoticeAfter] as number } : {}),
    secretTtlSeconds: v[FUNCTION_ENV.secretTtlSeconds] as number,
    instances: v[FUNCTION_ENV.instances] as number,
    leaseMs: FUNCTION_LEASE_MS,
    ...(env.AWS_LAMBDA_FUNCTION_NAME ? { functionName: env.AWS_LAMBDA_FUNCTION_NAME } : {}),
  };
}
