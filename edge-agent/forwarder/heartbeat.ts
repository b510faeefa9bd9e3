import { PutMetricDataCommand, type CloudWatchClient } from '@aws-sdk/client-cloudwatch';
import { AGENT_METRICS, AGENT_METRICS_NAMESPACE } from '../../contract/cloudResources.ts';
import type { DeliveryLogger } from '../../delivery/logger.ts';

/**
 * Tells the cloud the office box is alive: Heartbeat = 1 and SpoolDepth every interval. The
 * deployment alarms when the heartbeat is missing, so a box that lost power or network is noticed
 * even though it can send nothing about it.
 */
export class Heartbeat {
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly cloudWatch: Pick<CloudWatchClient, 'send'>,
    private readonly spoolDepth: () => number,
    private readonly logger: DeliveryLogger,
    private readonly intervalMs = 60_000,
  ) {}

  start(): void {
    void this.beat();
    this.timer = setInterval(() => void this.beat(), this.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  async beat(): Promise<void> {
    const depth = this.spoolDepth();
    try {
      await this.cloudWatch.send(
        new PutMetricDataCommand({
          Namespace: AGENT_METRICS_NAMESPACE,
          MetricData: [
            { MetricName: AGENT_METRICS.heartbeat, Value: 1, Unit: 'Count' },
            { MetricName: AGENT_METRICS.spoolDepth, Value: depth, Unit: 'Count' },
          ],
        }),
      );
    } catch (error) {
      // The alarm on the missing heartbeat is the report; here a line for whoever looks locally.
      this.logger.warn({ err: (error as Error).name, spoolDepth: depth }, 'could not publish the heartbeat');
    }
  }
}
