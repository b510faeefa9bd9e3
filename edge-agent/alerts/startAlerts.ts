import { hostname } from 'node:os';
import { ConfigError } from '../../config-toolkit/configError.ts';
import type { Submitter } from '../../delivery/smtp/submission.ts';
import type { TokenHealth } from '../../delivery/token/tokenProvider.ts';
import type { AgentConfig } from '../config/agentConfigSchema.ts';
import { inlineUpstream } from '../config/agentConfigSchema.ts';
import type { AlertsConfig } from '../config/alertsSchema.ts';
import type { Logger } from '../logger.ts';
import type { Spool } from '../spool/spool.ts';
import { AlertMonitor, alertStatePath } from './alertMonitor.ts';
import { AlertSignals, type ObservedLoop } from './alertSignals.ts';
import { certificateNotAfter } from '../../delivery/token/certificateExpiry.ts';

export interface StartAlertsOptions {
  config: AgentConfig;
  alerts: AlertsConfig;
  logger: Logger;
  spool: Spool;
  /** The spool delivery loop (queue.kind local); absent in cloud mode, where only the spool is watched. */
  loop?: ObservedLoop;
  /** The delivery loop's submitter and its mailbox (local mode; without an upstream, alert mail goes to the outbox like any other). */
  mail?: { submitter: Submitter; from: () => Promise<string | undefined> };
  tokens?: { health(): TokenHealth };
  now?: () => number;
}

export interface RunningAlerts {
  monitor: AlertMonitor;
  stop(): Promise<void>;
}

/** The office box's alerts, started with the agent and stopped before its submitter closes. */
export async function startAlerts(options: StartAlertsOptions): Promise<RunningAlerts> {
  const { config, alerts, logger, spool } = options;
  if (alerts.email !== false && !options.mail) {
    throw new ConfigError([
      'alerts.email: in cloud mode (queue.kind sqs) the office box has no upstream to mail through; use alerts.webhooks here and the CloudWatch alarms for delivery',
    ]);
  }
  const now = options.now ?? Date.now;
  const signals = new AlertSignals({
    spool,
    spoolDir: config.spool.dir,
    maxBytes: config.spool.maxBytes,
    tokens: options.tokens,
    certificateNotAfter: certificateNotAfter(inlineUpstream(config)),
    now,
  });
  if (options.loop) signals.observe(options.loop);
  await signals.seedHeld();
  const monitor = new AlertMonitor({
    config: alerts,
    signals,
    logger,
    statePath: alertStatePath(config.spool.dir),
    origin: { hostname: hostname() },
    mail: options.mail,
    now,
  });
  await monitor.start();
  logger.info({ email: alerts.email, webhooks: alerts.webhooks.length, intervalMs: alerts.interval }, 'alerts on');
  return {
    monitor,
    async stop() {
      await monitor.stop();
      signals.unobserve();
    },
  };
}
