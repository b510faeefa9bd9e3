import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { FUNCTION_ENV } from '../../contract/cloudResources.ts';
import { FunctionEnvError, readFunctionEnv } from '../../functions/lambda/functionEnv.ts';

const QUEUE_URL = 'https://sqs.eu-west-1.amazonaws.com/123456789012/smarthost-mail';
const DLQ_URL = 'https://sqs.eu-west-1.amazonaws.com/123456789012/smarthost-mail-dlq';
const SECRET_ARN = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:smarthost-upstream-AbCdEf';

const complete = {
  [FUNCTION_ENV.queueUrl]: QUEUE_URL,
  [FUNCTION_ENV.secretArn]: SECRET_ARN,
  [FUNCTION_ENV.deadLetterQueueUrl]: DLQ_URL,
  [FUNCTION_ENV.ledgerTable]: 'smarthost-ledger',
};

/** The variable names an error reports, in its order. */
function namesIn(error: unknown): string[] {
  assert.ok(error instanceof FunctionEnvError, `expected a FunctionEnvError, got ${String(error)}`);
  return error.problems.map((problem) => problem.slice(0, problem.indexOf(':')));
}

function errorOf(env: NodeJS.ProcessEnv): FunctionEnvError {
  try {
    readFunctionEnv(env);
  } catch (error) {
    assert.ok(error instanceof FunctionEnvError);
    return error;
  }
  assert.fail('readFunctionEnv accepted the environment');
}

describe('readFunctionEnv', () => {
  test('the variables the deployment sets, with the defaults for the optional ones', () => {
    assert.deepEqual(readFunctionEnv({ ...complete, PATH: '/usr/bin', AWS_REGION: 'eu-west-1' }), {
      queueUrl: QUEUE_URL,
      secretArn: SECRET_ARN,
      deadLetterQueueUrl: DLQ_URL,
      ledgerTable: 'smarthost-ledger',
      failureNoticeTo: undefined,
      delayedNoticeAfterMs: 4 * 3_600_000,
      secretTtlSeconds: 300,
      instances: 1,
      leaseMs: 360_000,
    });
  });

  test('optional variables as the CDK app writes them', () => {
    const env = readFunctionEnv({
      ...complete,
      [FUNCTION_ENV.failureNoticeTo]: 'it@contoso.com',
      [FUNCTION_ENV.secretTtlSeconds]: '0',
      [FUNCTION_ENV.instances]: '2',
    });
    assert.equal(env.failureNoticeTo, 'it@contoso.com');
    assert.equal(env.secretTtlSeconds, 0);
    assert.equal(env.instances, 2);
    assert.equal(readFunctionEnv({ ...complete, [FUNCTION_ENV.delayedNoticeAfter]: '30m' }).delayedNoticeAfterMs, 1_800_000);
    assert.equal(readFunctionEnv({ ...complete, [FUNCTION_ENV.delayedNoticeAfter]: 'off' }).delayedNoticeAfterMs, undefined);
    assert.deepEqual(errorOf({ ...complete, [FUNCTION_ENV.delayedNoticeAfter]: 'soon' }).problems, [`${FUNCTION_ENV.delayedNoticeAfter}: expected off or a duration such as 30m, 4h or 1d, got 'soon'`]);
    // An empty notice address means none.
    assert.equal(readFunctionEnv({ ...complete, [FUNCTION_ENV.failureNoticeTo]: '' }).failureNoticeTo, undefined);
  });

  test('every missing required variable is named in one error', () => {
    const error = errorOf({});
    assert.deepEqual(namesIn(error), [FUNCTION_ENV.queueUrl, FUNCTION_ENV.secretArn, FUNCTION_ENV.deadLetterQueueUrl, FUNCTION_ENV.ledgerTable]);
    assert.equal(error.name, 'FunctionEnvError');
    assert.match(error.message, /^invalid function environment:\n/);
    for (const name of namesIn(error)) assert.ok(error.message.includes(`\n  ${name}: `), `${name} is not on its own line in ${error.message}`);
  });

  test('every invalid variable is named in one error, the valid ones are not', () => {
    const error = errorOf({
      [FUNCTION_ENV.queueUrl]: 'smarthost-mail',
      [FUNCTION_ENV.secretArn]: 'smarthost-upstream',
      [FUNCTION_ENV.deadLetterQueueUrl]: DLQ_URL,
      [FUNCTION_ENV.ledgerTable]: '',
      [FUNCTION_ENV.failureNoticeTo]: 'it-department',
      [FUNCTION_ENV.secretTtlSeconds]: '-1',
      [FUNCTION_ENV.instances]: 'two',
    });
    assert.deepEqual(namesIn(error), [
      FUNCTION_ENV.queueUrl,
      FUNCTION_ENV.secretArn,
      FUNCTION_ENV.ledgerTable,
      FUNCTION_ENV.failureNoticeTo,
      FUNCTION_ENV.secretTtlSeconds,
      FUNCTION_ENV.instances,
    ]);
    assert.equal(error.message.split('\n').length, 7);
  });

  test('instances must be at least 1 and whole; the TTL whole and not negative', () => {
    assert.deepEqual(namesIn(errorOf({ ...complete, [FUNCTION_ENV.instances]: '0', [FUNCTION_ENV.secretTtlSeconds]: '1.5' })), [
      FUNCTION_ENV.secretTtlSeconds,
      FUNCTION_ENV.instances,
    ]);
  });
});

describe('the handler module at cold start', () => {
  test('importing it without its environment fails with every missing variable named', async () => {
    // This file's process has none of the function's variables (none of the tests set them).
    for (const name of Object.values(FUNCTION_ENV)) assert.equal(process.env[name], undefined, `${name} is set in the test environment`);
    await assert.rejects(import('../../functions/lambda/handler.ts'), (error: unknown) => {
      assert.deepEqual(namesIn(error), [FUNCTION_ENV.queueUrl, FUNCTION_ENV.secretArn, FUNCTION_ENV.deadLetterQueueUrl, FUNCTION_ENV.ledgerTable]);
      return true;
    });
  });
});
