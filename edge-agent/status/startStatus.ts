import type { TokenHealth } from '../../delivery/token/tokenProvider.ts';
import type { AddressInfo } from 'node:net';
import type { StatusConfig } from '../config/agentConfigSchema.ts';
import type { SmtpIntake } from '../intake/smtpIntake.ts';
import type { Logger } from '../logger.ts';
import type { Spool } from '../spool/spool.ts';
import type { SpoolHistory } from '../spool/spoolHistory.ts';
import { diskUse } from '../spool/retention.ts';
import type { SqsForwarder } from '../forwarder/sqsForwarder.ts';
import type { SpoolDeliveryLoop } from '../spool-delivery/spoolDeliveryLoop.ts';
import { consoleRoutes } from './consoleRoutes.ts';
import { CsrfTokens } from './csrf.ts';
import { healthRoutes } from './healthRoutes.ts';
import { queueViewOf } from './queueView.ts';
import { AgentMetrics } from './metrics.ts';
import { RelayActivity } from './relayActivity.ts';
import { STATUS_LIMITS, StatusServer, type StatusLimits } from './statusServer.ts';

/** How often the spool's disk use is counted for the console and /metrics (a walk over its folders). */
export const DISK_USE_INTERVAL_MS = 5 * 60_000;

export interface StatusParts {
  config: StatusConfig;
  logger: Logger;
  intake: SmtpIntake;
  spool: Spool;
  history: SpoolHistory;
  spoolDir: string;
  outboxDir?: string;
  loop?: SpoolDeliveryLoop;
  forwarder?: SqsForwarder;
  upstream: string;
  /** The SMTP intake accepts connections (for /readyz). */
  intakeListening: () => boolean;
  limits?: StatusLimits;
  /** The upstream's token client and certificate expiry, for the credential gauges. */
  tokens?: { health(): TokenHealth };
  certificateNotAfter?: number;
}

export interface RunningStatus {
  address: AddressInfo;
  metrics: AgentMetrics;
  activity: RelayActivity;
  close(): Promise<void>;
}

/**
 * Starts the HTTP listener: health checks, metrics and the console, fed by the intake's and the
 * delivery loop's events. Called before the intake listens, so no event is missed.
 */
export async function startStatus(parts: StatusParts): Promise<RunningStatus> {
  const { config, logger, intake, spool, history, loop } = parts;
  const activity = new RelayActivity();
  activity.observeIntake(intake);
  if (loop) activity.observeLoop(loop);

  // Seeded once from disk; kept from events after that, and recounted with the disk use.
  let failedCount = (await spool.listFailed()).length;
  for (const { envelope, state } of await spool.listQueued()) {
    if (state?.operatorAction) activity.seedHeld(envelope.id, { operatorAction: state.operatorAction, reply: state.lastError });
  }
  let usage: Record<string, number> = await diskUse(parts.spoolDir, parts.outboxDir);
  const recount = async () => {
    usage = await diskUse(parts.spoolDir, parts.outboxDir);
    failedCount = (await spool.listFailed()).length;
  };
  const timer = setInterval(() => {
    recount().catch((error: unknown) => logger.warn({ err: String(error) }, 'could not count the spool disk use'));
  }, DISK_USE_INTERVAL_MS);
  timer.unref();
  loop?.on('attempt', (record) => {
    if (record.action === 'failed') failedCount += 1;
  });

  const queue = queueViewOf(loop, parts.forwarder);
  const metrics = new AgentMetrics({
    activity,
    queueDepth: queue.depth,
    oldestQueuedId: queue.oldestId,
    queuedBytes: () => spool.bytesQueued,
    failedCount: () => failedCount,
    diskUse: () => usage,
    ...(parts.tokens ? { tokens: parts.tokens } : {}),
    ...(parts.certificateNotAfter !== undefined ? { certificateNotAfter: parts.certificateNotAfter } : {}),
  });
  metrics.observeIntake(intake);
  if (loop) metrics.observeLoop(loop);
  if (parts.forwarder) metrics.observeForwarder(parts.forwarder);

  const server = new StatusServer(
    config,
    [
      ...healthRoutes({ activity, metrics, intakeListening: parts.intakeListening, queueDir: spool.queueDir, readyWindowMs: config.readyWindow, checkCapacity: () => spool.checkCapacity() }),
      ...consoleRoutes({
        spool,
        history,
        loop,
        queue,
        activity,
        failedCount: () => failedCount,
        csrf: new CsrfTokens(),
        logger,
        upstream: parts.upstream,
        readyWindowMs: config.readyWindow,
        diskUse: () => usage,
        failedChanged: () => {
          // Both actions that call this (resend, delete) take one message out of failed/: the
          // overview the operator is sent back to shows it at once, the recount confirms it.
          failedCount = Math.max(0, failedCount - 1);
          recount().catch(() => undefined);
        },
      }),
    ],
    logger,
    parts.limits ?? STATUS_LIMITS,
  );
  const address = await server.listen();
  logger.info({ host: address.address, port: address.port, tls: Boolean(config.tls), auth: config.auth ? Object.keys(config.auth).filter((k) => k !== 'password') : 'none (loopback)' }, 'status listener started');
  return {
    address,
    metrics,
    activity,
    async close() {
      clearInterval(timer);
      await server.close();
    },
  };
}
