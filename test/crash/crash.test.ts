import assert from 'node:assert/strict';
import { readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test, type TestContext } from 'node:test';
import { ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import { TEST_REGION, childProcessEnv } from '../../testbed/aws/awsTestEnv.ts';
import { startLocalDynamo } from '../../testbed/aws/localDynamo.ts';
import { startLocalS3 } from '../../testbed/aws/localS3.ts';
import { startLocalSqs } from '../../testbed/aws/localSqs.ts';
import { makeTempDir } from '../../testbed/helpers/agentHarness.ts';
import { writeConfig } from '../../testbed/helpers/agentProcess.ts';
import { startExchangeOnlineRig } from '../../testbed/helpers/exchangeOnlineRig.ts';
import { bundleProcesses, type ProcessBundles } from './bundleProcesses.ts';
import { committedInSpool } from './committedInSpool.ts';
import { crashSettings } from './crashSettings.ts';
import { DeviceFleet } from './DeviceFleet.ts';
import { doneInLedger } from './doneInLedger.ts';
import { duplicateCopies, judgeCrashRun, type CrashVerdict, type KillRecord } from './judgeCrashRun.ts';
import { killAt, type KillMode } from './killAt.ts';
import { pollUntil } from '../../testbed/helpers/pollUntil.ts';
import { SeededRandom } from '../../testbed/helpers/seededRandom.ts';
import { SqsTap } from './SqsTap.ts';
import { startLoggingProcess, type LoggingProcess } from './startLoggingProcess.ts';
import { withinDeadline } from './withinDeadline.ts';
import type { CrashReport, RunFigures } from '../../testbed/crash/crashReport.ts';

/**
 * kill -9 under load, restart on the same spool, many times; then judge what arrived upstream
 * against what each device was told (see judgeCrashRun for exactly what is asserted).
 * SMARTHOST_CRASH_SEED replays a plan, SMARTHOST_CRASH_ROUNDS sets the number of kills (default
 * 10, about 40% of them in cloud mode), SMARTHOST_CRASH_REPORT names a JSON file for the figures.
 */

const settings = crashSettings();
/** The kill plan (modes and delays) draws from its own generator, so a seed replays the same plan. */
const plan = new SeededRandom(settings.seed);
const content = new SeededRandom((settings.seed ^ 0x9e3779b9) >>> 0);
const cloudRounds = Math.max(1, Math.round(settings.rounds * 0.4));
const embeddedRounds = settings.rounds - cloudRounds;

const EMBEDDED_MODES: readonly KillMode[] = ['during-data', 'after-250', 'upstream-accepted', 'delivering', 'random-delay'];
const CLOUD_AGENT_MODES: readonly KillMode[] = ['during-data', 'after-250', 'sqs-before-send', 'sqs-after-send', 'random-delay'];
const WORKER_MODES: readonly KillMode[] = ['upstream-accepted', 'delivering', 'random-delay'];

/** Mostly small scans and alerts, some large enough for a kill to land inside DATA (and go through S3 in cloud mode). */
const SIZES = [600, 1_500, 4_000, 12_000, 60_000, 250_000] as const;
/** Acknowledgements each agent incarnation gives before the round's kill is armed. */
const WARM_UP_ACKS = 3;
/** How long a round waits for its instant before killing anyway. */
const INSTANT_TIMEOUT_MS = 8_000;

const runs: RunFigures[] = [];

interface AgentProcess extends LoggingProcess {
  port: number;
}

function acknowledgedShas(fleet: DeviceFleet): Set<string> {
  return new Set(fleet.attempts.filter((a) => a.outcome === 'acknowledged').map((a) => a.sha256));
}

function everyArrived(arrivals: readonly { sha256: string }[], wanted: ReadonlySet<string>): boolean {
  const arrived = new Set(arrivals.map((m) => m.sha256));
  return [...wanted].every((sha) => arrived.has(sha));
}

/** SMARTHOST_CRASH_DEBUG=1 traces the rounds on stderr. */
const debug = (...args: unknown[]): void => {
  if (process.env.SMARTHOST_CRASH_DEBUG) console.error(new Date().toISOString(), ...args);
};

/** `smarthost start` from the bundle; resolves once it listens. */
async function startAgent(bundles: ProcessBundles, configPath: string, env: NodeJS.ProcessEnv = process.env): Promise<AgentProcess> {
  const started = await startLoggingProcess([bundles.agent, 'start', '--config', configPath], env, 'smarthost listening');
  return { ...started, port: Number(started.ready.port) };
}

async function killNow(victim: LoggingProcess): Promise<void> {
  victim.child.kill('SIGKILL');
  await victim.exited;
}

function figures(variant: RunFigures['variant'], kills: RunFigures['kills'], verdict: CrashVerdict, started: number): RunFigures {
  const copies = duplicateCopies(verdict);
  return {
    variant,
    rounds: kills.length,
    kills,
    messages: verdict.messages,
    attempts: verdict.attempts,
    acknowledged: verdict.acknowledged,
    arrivals: verdict.arrivals,
    lost: verdict.lost.length,
    unexplainedDuplicates: verdict.unexplainedDuplicates.length,
    windowDuplicateCopies: copies.window,
    retryDuplicateCopies: copies.retry,
    unacknowledgedDelivered: verdict.unacknowledgedDelivered,
    durationMs: Date.now() - started,
  };
}

function report(t: TestContext, run: RunFigures): void {
  runs.push(run);
  const modes = run.kills.map((k) => `${k.process}:${k.mode}${k.instantReached ? '' : '(timed out, killed anyway)'}`).join(' ');
  t.diagnostic(
    `seed ${settings.seed} ${run.variant}: ${run.rounds} kills, ${run.messages} messages, ${run.acknowledged} acknowledged, ` +
      `${run.lost} lost, ${run.windowDuplicateCopies} duplicated in the crash window, ${run.retryDuplicateCopies} duplicated by device retries, ` +
      `${run.unexplainedDuplicates} unexplained duplicates` +
      (run.sqsDuplicateHandOvers === undefined ? '' : `, ${run.sqsDuplicateHandOvers} SQS double hand-overs deduplicated`) +
      ` in ${run.durationMs} ms; kills: ${modes}`,
  );
}

function assertVerdict(verdict: CrashVerdict): void {
  const seed = `(replay with SMARTHOST_CRASH_SEED=${settings.seed})`;
  assert.ok(verdict.acknowledged > 0, `no message was acknowledged ${seed}`);
  assert.deepEqual(verdict.lost, [], `acknowledged but never delivered ${seed}`);
  assert.equal(verdict.unknownArrivals, 0, `arrivals that match no message sent ${seed}`);
  assert.deepEqual(verdict.unexplainedDuplicates, [], `delivered more than once outside the crash window ${seed}`);
  assert.deepEqual(verdict.acknowledgedTwice, [], `a device message acknowledged twice ${seed}`);
  assert.deepEqual(verdict.unsettled, [], `device messages never acknowledged ${seed}`);
}

describe(`kill -9 under load (seed ${settings.seed}, ${settings.rounds} kills)`, () => {
  let bundleDir: string;
  let bundles: ProcessBundles;

  before(async () => {
    bundleDir = await makeTempDir('smarthost-crash-bundle-');
    bundles = await bundleProcesses(bundleDir);
  });

  after(async () => {
    await rm(bundleDir, { recursive: true, force: true });
    if (settings.reportPath) {
      const report: CrashReport = { seed: settings.seed, rounds: settings.rounds, runs };
      await writeFile(settings.reportPath, JSON.stringify(report, null, 2));
    }
  });

  test(
    'embedded: every acknowledged message arrives; one arrives twice only when the kill fell between the upstream 250 and the spool removal',
    { timeout: 60_000 + embeddedRounds * 8_000 },
    async (t) => {
      const started = Date.now();
      const rig = await startExchangeOnlineRig();
      const dir = await makeTempDir('smarthost-crash-');
      const spoolDir = join(dir, 'spool');
      const fleet = new DeviceFleet({ devices: 6, random: content, runTag: `e${settings.seed}`, sizes: SIZES, from: 'scanner@contoso.com', to: 'you@contoso.com' });
      let agent: AgentProcess | undefined;
      try {
        const config = await writeConfig(dir, {
          listen: { host: '127.0.0.1', port: 0 },
          spool: { dir: spoolDir },
          upstream: rig.upstream({ rateLimit: { perMinute: 100_000, connections: 3 } }),
          retry: { schedule: ['100ms', '200ms'], maxAge: '1h' },
          log: { level: 'info' },
        });
        agent = await startAgent(bundles, config);
        fleet.setTarget({ port: agent.port, generation: 1 });
        fleet.start();
        const kills: KillRecord[] = [];
        const killLog: RunFigures['kills'] = [];
        for (let round = 1; round <= embeddedRounds; round++) {
          // Each incarnation takes some mail before it dies: the kills land under load.
          await fleet.untilAcknowledged(round, WARM_UP_ACKS, 20_000);
          const mode = plan.pick(EMBEDDED_MODES);
          debug('embedded round', round, mode, 'attempts', fleet.attempts.length, 'arrivals', rig.exo.messages.length);
          const victim = agent;
          const instantReached = await killAt(mode, { kill: () => killNow(victim), fleet, exo: rig.exo, random: plan, timeoutMs: INSTANT_TIMEOUT_MS });
          // Whatever the dead agent had sent is processed before the count that separates incarnations.
          await rig.exo.waitFor(() => rig.exo.activeSessions() === 0, 10_000, "the killed agent's upstream sessions to close");
          kills.push({ round, process: 'agent', mode, arrivalsBeforeRestart: rig.exo.messages.length, unfinished: await committedInSpool(spoolDir) });
          killLog.push({ round, process: 'agent', mode, instantReached });
          agent = await startAgent(bundles, config);
          fleet.setTarget({ port: agent.port, generation: round + 1 });
        }

        await withinDeadline(fleet.stopSending(), 60_000, 'every device message to be acknowledged');
        await pollUntil(async () => (await committedInSpool(spoolDir)).size === 0, 30_000, 'the spool to drain');
        await rig.exo.waitFor(() => everyArrived(rig.exo.messages, acknowledgedShas(fleet)), 10_000, 'every acknowledged message to arrive').catch(() => undefined);
        const last = agent;
        last.child.kill('SIGTERM');
        assert.equal(await last.exited, 0, 'the last agent stops cleanly');
        assert.deepEqual(await readdir(join(spoolDir, 'queue')), [], 'nothing is left in the queue');
        assert.deepEqual(await readdir(join(spoolDir, 'failed')), [], 'nothing was given up on');

        const verdict = judgeCrashRun(
          fleet.attempts,
          rig.exo.messages.map((m) => m.sha256),
          kills,
        );
        report(t, figures('embedded', killLog, verdict, started));
        assertVerdict(verdict);
      } finally {
        await fleet.close();
        if (agent) await killNow(agent);
        await rig.close();
        await rm(dir, { recursive: true, force: true });
      }
    },
  );

  test(
    'cloud: kills of the agent while forwarding to SQS and of the worker while delivering lose nothing acknowledged; only a worker kill after the upstream 250 repeats a delivery',
    { timeout: 90_000 + cloudRounds * 12_000 },
    async (t) => {
      const started = Date.now();
      const [rig, sqs, s3, dynamo] = await Promise.all([
        startExchangeOnlineRig(),
        // Receives are counted by local-aws-sqs even for ChangeMessageVisibility: keep redrive out of the way.
        startLocalSqs({ visibilityTimeout: 30, maxReceiveCount: 1_000 }),
        startLocalS3(),
        startLocalDynamo(),
      ]);
      const tap = await SqsTap.start(sqs.endpoint);
      const dir = await makeTempDir('smarthost-crash-cloud-');
      const spoolDir = join(dir, 'spool');
      const fleet = new DeviceFleet({ devices: 6, random: content, runTag: `c${settings.seed}`, sizes: SIZES, from: 'scanner@contoso.com', to: 'you@contoso.com' });
      let agent: AgentProcess | undefined;
      let worker: LoggingProcess | undefined;
      try {
        const agentConfig = await writeConfig(
          dir,
          {
            listen: { host: '127.0.0.1', port: 0 },
            spool: { dir: spoolDir },
            // Bodies over 16 KB go through S3, so kills also land in the middle of uploads.
            queue: { kind: 'sqs', sqs: { queueUrl: tap.queueUrl(sqs.queueUrl), bucket: s3.bucket, region: TEST_REGION, inlineMaxBytes: '16KB' } },
            log: { level: 'info' },
          },
          'agent.yaml',
        );
        const workerConfig = await writeConfig(
          dir,
          {
            queue: {
              kind: 'sqs',
              sqs: {
                queueUrl: sqs.queueUrl,
                bucket: s3.bucket,
                region: TEST_REGION,
                deadLetterQueueUrl: sqs.dlqUrl,
                ledgerTable: dynamo.tableName,
                // A message the killed worker held comes back after the visibility timeout and must
                // find the dead worker's claim expired; local-aws-sqs holds a poll for its full wait.
                worker: { lease: '3s', visibilityTimeout: '5s', pollWait: '1s', errorBackoff: '250ms' },
              },
            },
            upstream: rig.upstream({ rateLimit: { perMinute: 100_000, connections: 3 } }),
            retry: { schedule: ['1s'], maxAge: '1h' },
            log: { level: 'info' },
          },
          'worker.yaml',
        );
        const agentEnv = childProcessEnv({ sqs: tap.endpoint, s3: s3.endpoint, dynamodb: dynamo.endpoint });
        const workerEnv = childProcessEnv({ sqs: sqs.endpoint, s3: s3.endpoint, dynamodb: dynamo.endpoint });
        const startWorkerProcess = () => startLoggingProcess([bundles.agent, 'worker', '--config', workerConfig], workerEnv, 'smarthost worker polling');

        agent = await startAgent(bundles, agentConfig, agentEnv);
        worker = await startWorkerProcess();
        let generation = 1;
        fleet.setTarget({ port: agent.port, generation });
        fleet.start();
        const kills: KillRecord[] = [];
        const killLog: RunFigures['kills'] = [];
        for (let round = 1; round <= cloudRounds; round++) {
          // The first two rounds cover both processes; after that the plan chooses.
          const target = round === 1 ? 'agent' : round === 2 ? 'worker' : plan.pick(['agent', 'worker'] as const);
          await fleet.untilAcknowledged(generation, WARM_UP_ACKS, 20_000);
          debug('cloud round', round, target, 'attempts', fleet.attempts.length, 'arrivals', rig.exo.messages.length);
          if (target === 'agent') {
            const mode = plan.pick(CLOUD_AGENT_MODES);
            const victim = agent;
            const instantReached = await killAt(mode, { kill: () => killNow(victim), fleet, exo: rig.exo, random: plan, tap, timeoutMs: INSTANT_TIMEOUT_MS });
            // An agent crash can send one message to SQS twice but never deliver it twice: nothing is "unfinished" upstream.
            kills.push({ round, process: 'agent', mode, arrivalsBeforeRestart: rig.exo.messages.length, unfinished: new Set() });
            killLog.push({ round, process: 'agent', mode, instantReached });
            agent = await startAgent(bundles, agentConfig, agentEnv);
            fleet.setTarget({ port: agent.port, generation: ++generation });
          } else {
            const mode = plan.pick(WORKER_MODES);
            const victim = worker;
            const instantReached = await killAt(mode, { kill: () => killNow(victim), fleet, exo: rig.exo, random: plan, timeoutMs: INSTANT_TIMEOUT_MS });
            await rig.exo.waitFor(() => rig.exo.activeSessions() === 0, 10_000, "the killed worker's upstream sessions to close");
            const done = await doneInLedger(dynamo.client, dynamo.tableName);
            const unfinished = new Set(tap.accepted.filter((s) => !done.has(s.envelopeId)).map((s) => s.sha256));
            kills.push({ round, process: 'worker', mode, arrivalsBeforeRestart: rig.exo.messages.length, unfinished });
            killLog.push({ round, process: 'worker', mode, instantReached });
            worker = await startWorkerProcess();
          }
        }

        await withinDeadline(fleet.stopSending(), 60_000, 'every device message to be acknowledged');
        await pollUntil(async () => (await committedInSpool(spoolDir)).size === 0, 30_000, 'the agent to hand everything to SQS');
        // Everything SQS took arrives (a message the killed worker held comes back after its
        // visibility timeout); if something acknowledged never does, the verdict names it.
        const awaited = new Set([...tap.accepted.map((s) => s.sha256), ...acknowledgedShas(fleet)]);
        await rig.exo.waitFor(() => everyArrived(rig.exo.messages, awaited), 30_000, 'every message SQS took to arrive').catch(() => undefined);
        const lastAgent = agent;
        const lastWorker = worker;
        lastAgent.child.kill('SIGTERM');
        lastWorker.child.kill('SIGTERM');
        assert.equal(await lastAgent.exited, 0, 'the last agent stops cleanly');
        assert.equal(await lastWorker.exited, 0, 'the last worker stops cleanly');
        const deadLettered = await sqs.client.send(new ReceiveMessageCommand({ QueueUrl: sqs.dlqUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 0 }));
        assert.equal(deadLettered.Messages?.length ?? 0, 0, 'nothing went to the dead-letter queue');

        const verdict = judgeCrashRun(
          fleet.attempts,
          rig.exo.messages.map((m) => m.sha256),
          kills,
        );
        for (const key of verdict.lost) {
          const attempt = fleet.attempts.find((a) => a.key === key);
          debug('lost', key, attempt?.queueId, 'handed to SQS:', tap.accepted.some((s) => s.sha256 === attempt?.sha256));
        }
        const handOvers = new Map<string, number>();
        for (const send of tap.accepted) handOvers.set(send.envelopeId, (handOvers.get(send.envelopeId) ?? 0) + 1);
        report(t, {
          ...figures('cloud', killLog, verdict, started),
          sqsDuplicateHandOvers: [...handOvers.values()].filter((n) => n > 1).length,
        });
        assertVerdict(verdict);
      } finally {
        await fleet.close();
        if (agent) await killNow(agent);
        if (worker) await killNow(worker);
        await tap.close();
        await Promise.all([rig.close(), sqs.stop(), s3.stop(), dynamo.stop()]);
        await rm(dir, { recursive: true, force: true });
      }
    },
  );
});
