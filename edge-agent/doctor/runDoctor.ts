import type { Writable } from 'node:stream';
import { readPem } from '../../delivery/pem.ts';
import { GRAPH_MAX_MIME_BYTES } from '../../delivery/graph/graphLimits.ts';
import { poolMembers } from '../../delivery/pool/poolMembers.ts';
import type { UpstreamConfig } from '../../delivery/upstreamConfig.ts';
import { inlineUpstream, type AgentConfig } from '../config/agentConfigSchema.ts';
import { checkAuth } from './checks/auth.ts';
import { checkClock } from './checks/clock.ts';
import { checkConnect } from './checks/connect.ts';
import { checkCertificateCredential, checkFiles } from './checks/files.ts';
import { checkSenders, poolMemberSenders, senderAddresses } from './checks/senders.ts';
import { checkGraphClaims, checkGraphMailbox, checkGraphSenders } from './checks/graph.ts';
import { checkSmtpAndTls } from './checks/smtp.ts';
import { checkToken, requestToken, type TokenResult } from './checks/token.ts';
import { BlockingProblem, DOCTOR_EXIT, DoctorReport } from './report.ts';
import type { SmtpSession } from './smtpSession.ts';
import type { CloudDoctorEndpoints } from './checks/cloud.ts';

export interface DoctorOptions {
  out: Writable;
  /** Sends a real test message per send-as address to this address. */
  sendTestTo?: string;
  now?: () => number;
  /** Cloud mode: the upstream secret's ARN, to check the agent cannot read it (default: upstream.secretArn). */
  secretArn?: string;
  /** Cloud mode: where the AWS checks go (tests); absent: the SDK's defaults. */
  awsEndpoints?: CloudDoctorEndpoints;
}

/** Runs the checks in order; resolves with the exit code (DOCTOR_EXIT). */
export async function runDoctor(config: AgentConfig, options: DoctorOptions): Promise<number> {
  const report = new DoctorReport(options.out);
  const now = options.now ?? Date.now;
  try {
    report.ok('config', 'configuration valid');
    checkFiles(report, config);
    if (config.queue.kind === 'sqs' && config.queue.sqs) {
      const secretArn = options.secretArn ?? (config.upstream && 'secretArn' in config.upstream ? config.upstream.secretArn : undefined);
      // Loaded here only: a local relay's doctor does not need the AWS SDK.
      const { checkCloud } = await import('./checks/cloud.ts');
      await checkCloud(report, config.queue.sqs, secretArn, options.awsEndpoints);
    }
    const upstream = inlineUpstream(config);
    if (!upstream) {
      report.info(
        'upstream',
        config.upstream
          ? 'the upstream block is in Secrets Manager, which the agent cannot read by design; run doctor with the block inline to test it'
          : config.queue.kind === 'sqs'
            ? "cloud mode: the delivery function reads the upstream from the stack's secret; run doctor with the block inline (a copy of the secret's JSON) on a trusted machine to test it"
            : 'no upstream configured',
      );
      return exitCode(report);
    }
    if (!upstream.mailboxes) {
      await checkMailbox(report, upstream, senderAddresses(config, upstream), options, now);
      return exitCode(report);
    }
    // A pool: each mailbox on its own, so one mailbox's blocking problem does not hide the next one's.
    const members = poolMembers(upstream);
    for (const [index, member] of members.entries()) {
      const senders = poolMemberSenders(config, members, member);
      report.heading(`mailbox ${index + 1} of ${members.length}: ${member.mailbox ?? '(no mailbox)'}, route ${member.upstream.route ?? 'smtp'}, sends as ${senders.join(', ') || '-'}`);
      const ownAuth = upstream.mailboxes[index]?.auth !== undefined;
      report.keyRename = ownAuth ? (text) => text.replaceAll('upstream.auth.', `upstream.mailboxes[${index}].auth.`) : undefined;
      try {
        await checkMailbox(report, member.upstream, senders, options, now);
      } catch (error) {
        if (!(error instanceof BlockingProblem)) throw error;
        report.add(error.result);
      } finally {
        report.keyRename = undefined;
      }
    }
    return exitCode(report);
  } catch (error) {
    if (error instanceof BlockingProblem) {
      report.add(error.result);
      return DOCTOR_EXIT.blocked;
    }
    throw error;
  }
}

/** One mailbox's route, from its credential to its send-as addresses; throws BlockingProblem. */
async function checkMailbox(report: DoctorReport, upstream: UpstreamConfig, senders: readonly string[], options: DoctorOptions, now: () => number): Promise<void> {
  const ca = upstream.ca ? readPem(upstream.ca) : undefined;
  if (upstream.auth.type === 'oauth2') {
    checkCertificateCredential(report, upstream.auth, now());
    await checkClock(report, upstream.auth, ca, upstream.timeouts.connect, now);
  }
  if (upstream.route === 'graph' && upstream.auth.type === 'oauth2') {
    const token = await requestToken(report, upstream.auth, ca);
    checkGraphClaims(report, upstream, upstream.auth, token, options.sendTestTo !== undefined);
    await checkGraphMailbox(report, upstream, upstream.auth, token);
    await checkGraphSenders(report, upstream, upstream.auth, token, senders, options.sendTestTo);
    if (upstream.graph?.largeMessages === 'smtp') {
      report.info('large', `messages over ${GRAPH_MAX_MIME_BYTES} bytes of MIME go over SMTP AUTH to ${upstream.host}:${upstream.port} (graph.largeMessages: smtp), which this run does not test`);
    }
    return;
  }
  let session: SmtpSession | undefined;
  try {
    let token: TokenResult | undefined;
    session = await checkConnect(report, upstream, ca);
    await checkSmtpAndTls(report, session, upstream, ca);
    if (upstream.auth.type === 'oauth2') token = await checkToken(report, upstream.auth, ca);
    await checkAuth(report, session, upstream, token);
    await checkSenders(report, session, senders, upstream, options.sendTestTo);
  } finally {
    session?.close();
  }
}

function exitCode(report: DoctorReport): number {
  return report.results.some((r) => r.status === 'fail') ? DOCTOR_EXIT.blocked : DOCTOR_EXIT.ok;
}
