import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import type { MessageEnvelope } from '../contract/messageEnvelope.ts';
import { submitterForUpstream } from '../delivery/submitterForUpstream.ts';
import type { TokenHealth } from '../delivery/token/tokenProvider.ts';
import type { Submitter } from '../delivery/smtp/submission.ts';
import { MailboxPool } from '../delivery/pool/mailboxPool.ts';
import { poolFromUpstream } from '../delivery/pool/poolFromUpstream.ts';
import { recipientBudgetFile } from './spool-delivery/recipientBudgetFile.ts';
import { inlineUpstream, type AgentConfig, type SqsQueueConfig } from './config/agentConfigSchema.ts';
import { certificateNotAfter } from '../delivery/token/certificateExpiry.ts';
import type { SqsForwarder } from './forwarder/sqsForwarder.ts';
// Types only: the module itself (and the AWS SDK) is imported when cloud mode starts.
import type { CloudForwardingOptions } from './forwarder/startCloudForwarding.ts';
import { SmtpIntake } from './intake/smtpIntake.ts';
import type { Logger } from './logger.ts';
import { Spool } from './spool/spool.ts';
import { SpoolDeliveryLoop } from './spool-delivery/spoolDeliveryLoop.ts';
import { spoolHistory } from './spool/spoolHistory.ts';
import { OutboxSubmitter } from './spool-delivery/outboxSubmitter.ts';
import { pruneSpool, type RetentionPeriods } from './spool/retention.ts';
import type { RunningStatus } from './status/startStatus.ts';
import type { RunningAlerts } from './alerts/startAlerts.ts';
import { FailureNotices, noticesWanted } from './notices/failureNotices.ts';

/** How often failed messages, the outbox and histories past their retention are deleted. */
export const RETENTION_INTERVAL_MS = 60 * 60_000;

/** Writes to the outbox (or a test's submitter) at once: local disk, no mailbox limit to respect. */
const OUTBOX_CONNECTIONS = 4;

/** What takes messages out of the spool: the spool delivery loop or the SQS forwarder. */
export type SpoolConsumer = SpoolDeliveryLoop | SqsForwarder;

export interface RunningAgent {
  address: AddressInfo;
  spool: Spool;
  /** The spool delivery loop (queue.kind local). */
  deliveryLoop: SpoolDeliveryLoop;
  /** The SQS forwarder (queue.kind sqs). */
  forwarder: SqsForwarder;
  /** The HTTP listener (status configured). */
  status: RunningStatus | undefined;
  /** The alerts (alerts configured). */
  alerts: RunningAlerts | undefined;
  /** Failure notices (notices configured, queue.kind local). */
  notices: FailureNotices | undefined;
  /** Graceful stop: 421 to new connections, in-flight transactions and hand-overs finish (up to timeoutMs). */
  stop(timeoutMs?: number): Promise<void>;
}

/** Cloud mode's AWS clients, heartbeat interval and forwarder tuning come from CloudForwardingOptions. */
export interface AgentDependencies extends CloudForwardingOptions {
  logger: Logger;
  /** Replaces the submitter built from config (tests). */
  submitter?: Submitter;
  /** Passed to the spool (tests simulate a full disk). */
  spoolOptions?: Partial<ConstructorParameters<typeof Spool>[0]>;
  /** Replaces the status listener's limits (tests shorten its timeouts). */
  statusLimits?: import('./status/statusServer.ts').StatusLimits;
}

/**
 * The mailboxes the config delivers through (each of `upstream.mailboxes` or the one upstream with
 * its own submitter and limits, a secret's upstream as a pool of one, or the outbox), and the mailbox generated mail (alerts, notices) is From: the
 * first member's, which for a secret is known only once the secret is read (Exchange refuses any
 * other From with 5.7.60).
 */
export async function mailboxPoolFor(config: AgentConfig, logger: Logger): Promise<{ pool: MailboxPool; generatedFrom: () => Promise<string | undefined> }> {
  const upstream = config.upstream;
  if (!upstream) {
    logger.warn(
      { outbox: config.outbox.dir },
      'no upstream configured: accepted mail is written to the outbox folder, not sent. Configure upstream to deliver to Microsoft 365.',
    );
    return { pool: new MailboxPool([{ mailbox: undefined, submitter: new OutboxSubmitter(config.outbox.dir), route: 'outbox', connections: OUTBOX_CONNECTIONS }]), generatedFrom: async () => undefined };
  }
  if ('secretArn' in upstream) {
    // A secret's mailbox and rate are known only once it is read: its submitter limits the rate
    // itself, and operator hints go without the mailbox.
    const chosen = await submitterForUpstream(upstream);
    const pool = new MailboxPool([{ mailbox: undefined, submitter: chosen.submitter, route: 'upstream from secret', connections: chosen.connections, ...(chosen.tokens ? { tokens: chosen.tokens } : {}) }]);
    return { pool, generatedFrom: chosen.mailbox };
  }
  const budgetStore = recipientBudgetFile(config.spool.dir, (error) => logger.warn({ err: String(error) }, 'could not save the recipient counts'));
  const pool = poolFromUpstream(upstream, { budgetStore, logger });
  return { pool, generatedFrom: async () => pool.members[0]?.mailbox };
}

/** Wires intake → spool → (delivery loop → upstream | SQS forwarder) and starts listening. */
export async function startAgent(config: AgentConfig, deps: AgentDependencies): Promise<RunningAgent> {
  const { logger } = deps;
  const spool = new Spool({ dir: config.spool.dir, maxBytes: config.spool.maxBytes, ...deps.spoolOptions });
  const queued = await spool.open();
  const history = spoolHistory(spool, config.spool.dir);
  const periods: RetentionPeriods = { historyMs: config.spool.historyRetention, failedMs: config.spool.failedRetention, outboxMs: config.outbox.retention };
  const prune = async () => {
    try {
      const removed = await pruneSpool(spool, history, config.queue.kind === 'local' && !config.upstream ? config.outbox.dir : undefined, periods);
      if (removed.failed + removed.outbox + removed.history > 0) logger.info(removed, 'deleted what is past its retention');
    } catch (error) {
      logger.warn({ err: String(error) }, 'could not prune the spool');
    }
  };
  await prune();
  const pruneTimer = setInterval(() => void prune(), RETENTION_INTERVAL_MS);
  pruneTimer.unref();

  let onAccepted: (envelope: MessageEnvelope) => void;
  let stopConsumer: (timeoutMs: number) => Promise<void>;
  let deliveryLoop: SpoolDeliveryLoop | undefined;
  let forwarder: SqsForwarder | undefined;
  let upstreamName: string;
  let alertMail: { submitter: Submitter; from: () => Promise<string | undefined> } | undefined;
  let tokens: { health(): TokenHealth } | undefined;
  let notices: FailureNotices | undefined;

  if (config.queue.kind === 'sqs') {
    const sqsConfig = config.queue.sqs as SqsQueueConfig;
    const { startCloudForwarding } = await import('./forwarder/startCloudForwarding.ts');
    // The cloud sends the failure notices; which addresses get one the agent decides at handoff.
    const cloud = startCloudForwarding(sqsConfig, spool, queued, logger, { ...deps, history, ...(noticesWanted(config) ? { notices: config } : {}) });
    forwarder = cloud.forwarder;
    onAccepted = cloud.enqueue;
    stopConsumer = cloud.stop;
    upstreamName = sqsConfig.queueUrl;
  } else {
    const { pool, generatedFrom } = deps.submitter
      ? { pool: new MailboxPool([{ mailbox: undefined, submitter: deps.submitter, route: 'outbox', connections: OUTBOX_CONNECTIONS }]), generatedFrom: async () => undefined }
      : await mailboxPoolFor(config, logger);
    // Alerts mail the admin through the first mailbox and watch its token (a pool's members share the app).
    alertMail = { submitter: pool.members[0]!.submitter, from: generatedFrom };
    tokens = pool.members.find((m) => m.tokens)?.tokens;
    const loop = new SpoolDeliveryLoop({
      spool,
      pool,
      logger,
      policy: { scheduleMs: config.retry.schedule, maxAgeMs: config.retry.maxAge },
      history,
      throttlePauseMs: config.retry.schedule[0] ?? 60_000,
    });
    // Observed before the loop starts: a message given up on its first look still gets its notice.
    notices = noticesWanted(config) ? new FailureNotices({ config, spool, history, mail: alertMail, logger }) : undefined;
    notices?.observe(loop);
    await notices?.seedHeld(queued.map((e) => e.id));
    await loop.start(queued);
    deliveryLoop = loop;
    onAccepted = (envelope) => loop.enqueue(envelope);
    stopConsumer = async (timeoutMs) => {
      await loop.stop(timeoutMs);
      // Notices go through the pool's submitter.
      await notices?.stop();
      await pool.close();
    };
    upstreamName = config.upstream ? ('secretArn' in config.upstream ? config.upstream.secretArn : config.upstream.host) : 'outbox';
  }

  const tls = config.listen.tls;
  const intake = new SmtpIntake(
    {
      host: config.listen.host,
      port: config.listen.port,
      maxMessageSize: config.listen.maxMessageSize,
      maxRecipients: config.listen.maxRecipients,
      bareNewlines: config.listen.bareNewlines,
      nulBytes: config.listen.nulBytes,
      tls: tls ? { cert: readFileSync(tls.cert, 'utf8'), key: readFileSync(tls.key, 'utf8'), minVersion: tls.minVersion } : undefined,
      maxConnections: config.listen.maxConnections,
      maxConnectionsPerClient: config.listen.maxConnectionsPerClient,
      idleTimeoutMs: config.listen.idleTimeout,
      clients: config.clients,
      allowedDomains: config.senders.allowedDomains,
    },
    spool,
    logger,
    (envelope) => onAccepted(envelope),
  );
  let intakeListening = false;
  let status: RunningStatus | undefined;
  const certificateExpiry = config.queue.kind === 'local' ? certificateNotAfter(inlineUpstream(config)) : undefined;
  if (config.status) {
    const { startStatus } = await import('./status/startStatus.ts');
    status = await startStatus({
      config: config.status,
      logger,
      intake,
      spool,
      history,
      spoolDir: config.spool.dir,
      outboxDir: config.queue.kind === 'local' && !config.upstream ? config.outbox.dir : undefined,
      loop: deliveryLoop,
      forwarder,
      upstream: upstreamName,
      intakeListening: () => intakeListening,
      limits: deps.statusLimits,
      ...(tokens ? { tokens } : {}),
      ...(certificateExpiry !== undefined ? { certificateNotAfter: certificateExpiry } : {}),
    });
  }
  let alerts: RunningAlerts | undefined;
  if (config.alerts) {
    const { startAlerts } = await import('./alerts/startAlerts.ts');
    alerts = await startAlerts({ config, alerts: config.alerts, logger, spool, loop: deliveryLoop, mail: alertMail, tokens });
  }
  const address = await intake.listen();
  intakeListening = true;
  logger.info({ host: address.address, port: address.port, queued: queued.length, queue: config.queue.kind, upstream: upstreamName }, 'smarthost listening');

  return {
    address,
    spool,
    get deliveryLoop(): SpoolDeliveryLoop {
      if (!deliveryLoop) throw new Error('queue.kind is sqs: there is no spool delivery loop');
      return deliveryLoop;
    },
    get forwarder(): SqsForwarder {
      if (!forwarder) throw new Error('queue.kind is local: there is no SQS forwarder');
      return forwarder;
    },
    status,
    alerts,
    notices,
    async stop(timeoutMs = 30_000) {
      clearInterval(pruneTimer);
      // Before the consumer: alert mail goes through its submitter.
      await alerts?.stop();
      intakeListening = false;
      await status?.close();
      await intake.close(timeoutMs);
      await stopConsumer(timeoutMs);
      await spool.close();
      logger.info({ queued: deliveryLoop?.depth ?? forwarder?.depth ?? 0 }, 'smarthost stopped');
    },
  };
}
