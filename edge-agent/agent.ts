import type { AddressInfo } from 'node:net';
import { createUpstreamSubmitter } from '../delivery/createUpstreamSubmitter.ts';
import type { Submitter } from '../delivery/smtp/submission.ts';
import type { AgentConfig } from './config/agentConfigSchema.ts';
import { SmtpIntake } from './intake/smtpIntake.ts';
import type { Logger } from './logger.ts';
import { Spool } from './spool/spool.ts';
import { LocalDeliveryWorker } from './worker/localDeliveryWorker.ts';
import { OutboxSubmitter } from './worker/outboxSubmitter.ts';
import { readFileSync } from 'node:fs';

export interface RunningAgent {
  address: AddressInfo;
  spool: Spool;
  worker: LocalDeliveryWorker;
  /** Graceful stop: 421 to new connections, in-flight transactions and deliveries finish (up to timeoutMs). */
  stop(timeoutMs?: number): Promise<void>;
}

export interface AgentDependencies {
  logger: Logger;
  /** Replaces the submitter built from config (tests). */
  submitter?: Submitter;
  /** Passed to the spool (tests simulate a full disk). */
  spoolOptions?: Partial<ConstructorParameters<typeof Spool>[0]>;
}

/** Wires intake → spool → local worker → upstream (or outbox) and starts listening. */
export async function startAgent(config: AgentConfig, deps: AgentDependencies): Promise<RunningAgent> {
  const { logger } = deps;
  const spool = new Spool({ dir: config.spool.dir, maxBytes: config.spool.maxBytes, ...deps.spoolOptions });
  const queued = await spool.open();

  let submitter: Submitter;
  let mailbox: string | undefined;
  let concurrency = 4;
  if (deps.submitter) {
    submitter = deps.submitter;
  } else if (config.upstream) {
    ({ submitter, mailbox } = createUpstreamSubmitter(config.upstream));
    concurrency = config.upstream.rateLimit.connections;
  } else {
    submitter = new OutboxSubmitter(config.outbox.dir);
    logger.warn(
      { outbox: config.outbox.dir },
      'no upstream configured: accepted mail is written to the outbox folder, not sent. Configure upstream to deliver to Microsoft 365.',
    );
  }

  const worker = new LocalDeliveryWorker({
    spool,
    submitter,
    logger,
    concurrency,
    mailbox,
    policy: { scheduleMs: config.retry.schedule, maxAgeMs: config.retry.maxAge },
    throttlePauseMs: config.retry.schedule[0] ?? 60_000,
  });
  const tls = config.listen.tls;
  const intake = new SmtpIntake(
    {
      host: config.listen.host,
      port: config.listen.port,
      maxMessageSize: config.listen.maxMessageSize,
      maxRecipients: config.listen.maxRecipients,
      bareNewlines: config.listen.bareNewlines,
      tls: tls ? { cert: readFileSync(tls.cert, 'utf8'), key: readFileSync(tls.key, 'utf8'), minVersion: tls.minVersion } : undefined,
      maxConnections: config.listen.maxConnections,
      maxConnectionsPerClient: config.listen.maxConnectionsPerClient,
      idleTimeoutMs: config.listen.idleTimeout,
      clients: config.clients,
      allowedDomains: config.senders.allowedDomains,
    },
    spool,
    logger,
    (envelope) => worker.enqueue(envelope),
  );
  await worker.start(queued);
  const address = await intake.listen();
  logger.info({ host: address.address, port: address.port, queued: queued.length, upstream: config.upstream?.host ?? 'outbox' }, 'smarthost listening');

  return {
    address,
    spool,
    worker,
    async stop(timeoutMs = 30_000) {
      await intake.close(timeoutMs);
      await worker.stop(timeoutMs);
      await submitter.close();
      logger.info({ queued: worker.depth }, 'smarthost stopped');
    },
  };
}
