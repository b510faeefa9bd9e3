import type { DeliveryLogger } from '../../delivery/logger.ts';
import type { UpstreamSource } from '../../delivery/submitterForUpstream.ts';
import { startSqsPoller, type RunningSqsPoller, type SqsPollerSettings } from '../../functions/sqs-poller/startSqsPoller.ts';
import type { LocalDynamo } from '../../testbed/aws/localDynamo.ts';
import type { LocalS3 } from '../../testbed/aws/localS3.ts';
import type { LocalSqs } from '../../testbed/aws/localSqs.ts';

/**
 * `count` `smarthost worker` instances on the same queue, ledger and upstream, as two office-box
 * workers or concurrent Lambda instances would run: a one-second first retry, a one-hour maxAge,
 * one-second long polls; `timings` for the visibility and lease each test is about.
 */
export async function startTestWorkers(
  count: number,
  aws: { sqs: LocalSqs; s3: LocalS3; dynamo: LocalDynamo },
  upstream: UpstreamSource,
  timings: Pick<SqsPollerSettings['timings'], 'visibilityTimeout' | 'lease'>,
  loggerOf: (instance: number) => DeliveryLogger,
): Promise<RunningSqsPoller[]> {
  const workers: RunningSqsPoller[] = [];
  for (let i = 0; i < count; i++) {
    workers.push(
      await startSqsPoller(
        {
          queueUrl: aws.sqs.queueUrl,
          deadLetterQueueUrl: aws.sqs.dlqUrl,
          ledgerTable: aws.dynamo.tableName,
          upstream,
          policy: { scheduleMs: [1_000], maxAgeMs: 3_600_000 },
          timings: { pollWait: 1_000, errorBackoff: 200, ...timings },
        },
        loggerOf(i),
        { sqs: aws.sqs.client, s3: aws.s3.client, dynamo: aws.dynamo.client },
      ),
    );
  }
  return workers;
}
