import { pipeline } from 'node:stream/promises';
import { parseArgs } from 'node:util';
import { loadConfig } from '../edge-agent/config/loadConfig.ts';
import { ConfigError } from '../config-toolkit/configError.ts';
import { maskSecrets } from '../edge-agent/config/maskSecrets.ts';
import { checkReferencedFiles } from '../edge-agent/config/checkFiles.ts';
import type { AgentConfig } from '../edge-agent/config/agentConfigSchema.ts';
import { startAgent } from '../edge-agent/agent.ts';
import { sqsPollerSettings } from './sqsPollerSettings.ts';
import { createLogger } from '../edge-agent/logger.ts';
import { startMemoryGovernor } from '../edge-agent/memoryGovernor.ts';
import { Spool } from '../edge-agent/spool/spool.ts';
import { spoolHistory } from '../edge-agent/spool/spoolHistory.ts';
import { trace, traceQueryOf, traceSearch } from './trace.ts';
import { resendFailed } from '../edge-agent/spool/operatorActions.ts';
import { defaultConfigFiles } from './configFiles.ts';
import { checkHealth } from './healthcheck.ts';
import packageJson from '../package.json' with { type: 'json' };
import { userInfo } from 'node:os';
import { isAbsolute } from 'node:path';
import { stringify } from 'yaml';

const USAGE = `Usage: smarthost <command> [--config FILE]
       smarthost --version

Commands:
  start          run the relay (SMTP intake, spool, delivery)
  worker         deliver from the SQS queue (cloud mode without Lambda, or local end-to-end runs)
  check-config   validate the configuration and print it with secrets masked
  doctor         test the configured upstream live, step by step (exit 0 ok, 1 config invalid,
                 3 a check failed); --send-test ADDRESS sends a test message per send-as address;
                 cloud mode: the agent's AWS credentials, queue, bucket and heartbeat, and with
                 --secret-arn ARN that the upstream secret is out of the agent's reach
  queue          list queued and failed messages
  resend ID...   put failed messages back in the queue (after fixing the cause); a running
                 agent picks them up within 30 seconds
  show ID        print a queued or failed message as received (the envelope goes to stderr)
  trace ID       print a message's delivery history, from acceptance to its last attempt (cloud
                 mode: the ledger's attempts too, when queue.sqs.ledgerTable is set)
  trace --message-id ID | --from ADDRESS | --to ADDRESS [--since 2h]
                 find messages by their Message-ID header, sender or recipient (any part, any
                 case; options combine) and say what became of each
  failed         cloud mode: list the dead-letter queue with each message's reason
  redrive        cloud mode: move the dead-letter queue back to the mail queue
  healthcheck    ask the status listener's /readyz, or without a status block read the SMTP
                 greeting (exit 0 healthy, 1 not); the container image's HEALTHCHECK

Options:
  --config FILE  configuration file (default: the first of ${defaultConfigFiles().map((file) => (isAbsolute(file) ? file : `./${file}`)).join(', ')}
                 present, else built-in defaults)
  --version      print the version
  --help         show this help
`;

/** Runs a command; resolves with the process exit code. */
export async function main(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, allowPositionals: true, options: {
        config: { type: 'string', short: 'c' },
        help: { type: 'boolean', short: 'h' },
        version: { type: 'boolean' },
        'send-test': { type: 'string' },
        'secret-arn': { type: 'string' },
        'message-id': { type: 'string' },
        from: { type: 'string' },
        to: { type: 'string' },
        since: { type: 'string' },
      }, });
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n\n${USAGE}`);
    return 2;
  }
  if (parsed.values.version || parsed.positionals[0] === 'version') {
    process.stdout.write(`smarthost ${packageJson.version} (Node.js ${process.version})\n`);
    return 0;
  }
  const [command = 'help'] = parsed.positionals;
  if (parsed.values.help || command === 'help') {
    process.stdout.write(USAGE);
    return 0;
  }
  if (!['start', 'worker', 'check-config', 'doctor', 'queue', 'resend', 'show', 'trace', 'failed', 'redrive', 'healthcheck'].includes(command)) {
    process.stderr.write(`Unknown command '${command}'.\n\n${USAGE}`);
    return 2;
  }
  let config: AgentConfig;
  try {
    config = await loadConfig({ path: parsed.values.config, defaultFiles: defaultConfigFiles() });
    if (command === 'start' || command === 'check-config') {
      checkReferencedFiles(config);
    }
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`${error.message}\n`);
      return 1;
    }
    throw error;
  }
  switch (command) {
    case 'check-config':
      process.stdout.write(`# configuration is valid; secrets masked\n${stringify(maskSecrets(config))}`);
      return 0;
    case 'doctor':
      return (await import('../edge-agent/doctor/runDoctor.ts')).runDoctor(config, { out: process.stdout, sendTestTo: parsed.values['send-test'], secretArn: parsed.values['secret-arn'] });
    case 'queue':
      return listQueue(config);
    case 'resend':
      return resend(config, parsed.positionals.slice(1));
    case 'show':
      return show(config, parsed.positionals[1]);
    case 'trace': {
      const search = parsed.values['message-id'] ?? parsed.values.from ?? parsed.values.to ?? parsed.values.since;
      if (search === undefined) return trace(config, parsed.positionals[1], process.stdout, process.stderr);
      const query = traceQueryOf(parsed.values);
      if (typeof query === 'string') {
        process.stderr.write(`${query}\n`);
        return 2;
      }
      return traceSearch(config, query, process.stdout, process.stderr);
    }
    case 'worker':
      return runWorker(config);
    case 'failed':
      return operatorCommand(async () => (await import('../edge-agent/cloud/cloudCommands.ts')).printDeadLetters(config, process.stdout));
    case 'redrive':
      return operatorCommand(async () => (await import('../edge-agent/cloud/cloudCommands.ts')).redrive(config, process.stdout));
    case 'healthcheck':
      return healthcheck(config);
    default:
      return run(config);
  }
}

async function run(config: AgentConfig): Promise<number> {
  startMemoryGovernor({ maxBufferBytes: 16 * 1024 * 1024, maxHeapGrowthBytes: 8 * 1024 * 1024, intervalMs: 100, maxTimeShare: 0.05 });
  const logger = createLogger(config.log.level);
  // Listened for before the agent starts: a SIGTERM right after "smarthost listening" (systemd,
  // docker stop) must still stop it gracefully, not kill it with Node's default action.
  let received: NodeJS.Signals | undefined;
  let onStop: ((signal: NodeJS.Signals) => void) | undefined;
  const stopOn = (signal: NodeJS.Signals) => () => {
    received ??= signal;
    onStop?.(signal);
  };
  process.once('SIGTERM', stopOn('SIGTERM'));
  process.once('SIGINT', stopOn('SIGINT'));
  const agent = await startAgent(config, { logger }).catch((error: unknown) => {
    logger.fatal({ err: error instanceof Error ? error.message : String(error) }, 'could not start');
    return undefined;
  });
  if (!agent) {
    logger.flush();
    return 1;
  }
  const signal = received ?? (await new Promise<NodeJS.Signals>((resolve) => (onStop = resolve)));
  logger.info({ signal }, 'shutting down');
  await agent.stop(30_000);
  logger.flush();
  return 0;
}

async function healthcheck(config: AgentConfig): Promise<number> {
  const result = await checkHealth(config);
  if (result.healthy) {
    process.stdout.write(`healthy: ${result.answer}\n`);
    return 0;
  }
  process.stderr.write(`unhealthy: ${result.reason}\n`);
  return 1;
}

async function operatorCommand(run: () => Promise<void>): Promise<number> {
  try {
    await run();
    return 0;
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n`);
    return 1;
  }
}

async function runWorker(config: AgentConfig): Promise<number> {
  const logger = createLogger(config.log.level);
  const { startSqsPoller } = await import('../functions/sqs-poller/startSqsPoller.ts');
  let running;
  try {
    running = await startSqsPoller(sqsPollerSettings(config), logger);
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`${error.message}\n`);
      return 1;
    }
    throw error;
  }
  const signal = await new Promise<NodeJS.Signals>((resolve) => {
    process.once('SIGTERM', () => resolve('SIGTERM'));
    process.once('SIGINT', () => resolve('SIGINT'));
  });
  logger.info({ signal }, 'worker shutting down');
  await running.stop();
  return 0;
}

async function listQueue(config: AgentConfig): Promise<number> {
  const spool = new Spool({ dir: config.spool.dir });
  const queued = await spool.listQueued();
  const failed = await spool.listFailed();
  const lines = [`queued: ${queued.length}`];
  for (const { envelope, state } of queued) {
    lines.push(
      `  ${envelope.id}  ${envelope.receivedAt}  from=${envelope.sendAs ?? (envelope.mailFrom || '<>')}  rcpts=${envelope.rcptTo.length}  size=${envelope.size}` +
        (state ? `  attempts=${state.attempts}  next=${state.nextAttemptAt ?? '-'}  last="${state.lastError ?? ''}"` : '') +
        (state?.operatorAction ? `  held for the operator; fix: ${state.operatorAction}` : ''),
    );
  }
  lines.push(`failed: ${failed.length}`);
  for (const { envelope, failure } of failed) {
    lines.push(`  ${envelope.id}  ${failure.failedAt}  ${failure.reason}  reply="${failure.reply ?? ''}"${failure.operatorAction ? `  fix: ${failure.operatorAction}` : ''}`);
  }
  process.stdout.write(lines.join('\n') + '\n');
  return 0;
}

async function show(config: AgentConfig, id: string | undefined): Promise<number> {
  if (!id) {
    process.stderr.write('show needs the id of a queued or failed message (see `smarthost queue`).\n');
    return 2;
  }
  let found;
  try {
    found = await new Spool({ dir: config.spool.dir }).findMessage(id);
  } catch (error) {
    process.stderr.write(`${id}: ${(error as Error).message}\n`);
    return 1;
  }
  if (!found) {
    process.stderr.write(`${id}: no such queued or failed message\n`);
    return 1;
  }
  // The envelope on stderr keeps stdout the message alone, for `> scan.eml`.
  process.stderr.write(`${found.where}: ${JSON.stringify(found.envelope)}\n`);
  await pipeline(found.body, process.stdout, { end: false });
  return 0;
}

async function resend(config: AgentConfig, ids: string[]): Promise<number> {
  if (ids.length === 0) {
    process.stderr.write('resend needs the id of at least one failed message (see `smarthost queue`).\n');
    return 2;
  }
  const spool = new Spool({ dir: config.spool.dir });
  const history = spoolHistory(spool, config.spool.dir);
  let code = 0;
  for (const id of ids) {
    try {
      await resendFailed(spool, history, id, operatorName(), (error) => process.stderr.write(`${id}: could not record the resend in its history: ${error.message}\n`));
      process.stdout.write(`${id}: back in the queue\n`);
    } catch (error) {
      const reason = (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such failed message' : (error as Error).message;
      process.stderr.write(`${id}: ${reason}\n`);
      code = 1;
    }
  }
  return code;
}

/** Who ran an operator command, for the message's history. */
function operatorName(): string {
  try {
    return userInfo().username;
  } catch {
    return 'unknown';
  }
}
