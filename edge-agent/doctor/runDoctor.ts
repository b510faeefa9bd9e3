import type { Writable } from 'node:stream';
import { readPem } from '../../delivery/pem.ts';
import { inlineUpstream, type AgentConfig } from '../config/agentConfigSchema.ts';
import { checkAuth } from './checks/auth.ts';
import { checkClock } from './checks/clock.ts';
import { checkConnect } from './checks/connect.ts';
import { checkCertificateCredential, checkFiles } from './checks/files.ts';
import { checkSenders } from './checks/senders.ts';
import { checkSmtpAndTls } from './checks/smtp.ts';
import { checkToken, type TokenResult } from './checks/token.ts';
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
  let session: SmtpSession | undefined;
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
    const ca = upstream.ca ? readPem(upstream.ca) : undefined;
    let token: TokenResult | undefined;
    if (upstream.auth.type === 'oauth2') {
      checkCertificateCredential(report, upstream.auth, now());
      await checkClock(report, upstream.auth, ca, upstream.timeouts.connect, now);
    }
    session = await checkConnect(report, upstream, ca);
    await checkSmtpAndTls(report, session, upstream, ca);
    if (upstream.auth.type === 'oauth2') token = await checkToken(report, upstream.auth, ca);
    await checkAuth(report, session, upstream, token);
    await checkSenders(report, session, config, upstream, options.sendTestTo);
    return exitCode(report);
  } catch (error) {
    if (error instanceof BlockingProblem) {
      report.add(error.result);
      return DOCTOR_EXIT.blocked;
    }
    throw error;
  } finally {
    session?.close();
  }
}

function exitCode(report: DoctorReport): number {
  return report.results.some((r) => r.status === 'fail') ? DOCTOR_EXIT.blocked : DOCTOR_EXIT.ok;
}
