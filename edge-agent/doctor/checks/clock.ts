import { request } from 'node:https';
import type { OAuth2AuthConfig } from '../../../delivery/upstreamConfig.ts';
import type { DoctorReport } from '../report.ts';

/** Tokens carry 5-minute leeways, so a clock further off breaks token requests and assertions. */
export const CLOCK_SKEW_WARNING_MS = 5 * 60_000;

/** Compares this machine's clock with the Date header of the identity platform's metadata. */
export async function checkClock(report: DoctorReport, auth: OAuth2AuthConfig, ca: string | undefined, timeoutMs: number, now: () => number): Promise<void> {
  const url = `${auth.authority}/${auth.tenantId}/v2.0/.well-known/openid-configuration`;
  let dateHeader: string | undefined;
  try {
    dateHeader = await new Promise<string | undefined>((resolve, reject) => {
      const req = request(url, { method: 'GET', ca, agent: false, timeout: timeoutMs }, (res) => {
        res.resume();
        resolve(res.headers.date);
      });
      req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
      req.on('error', reject);
      req.end();
    });
  } catch (error) {
    report.warn('clock', `could not compare the clock: ${new URL(url).host} did not answer (${(error as Error).message})`, 'the token step below tells whether the identity platform is reachable');
    return;
  }
  const theirs = dateHeader ? Date.parse(dateHeader) : Number.NaN;
  if (Number.isNaN(theirs)) {
    report.warn('clock', `${new URL(url).host} sent no Date header to compare the clock with`);
    return;
  }
  const skew = now() - theirs;
  const seconds = Math.round(skew / 1000);
  if (Math.abs(skew) > CLOCK_SKEW_WARNING_MS) {
    report.warn('clock', `this machine's clock is ${Math.abs(seconds)} s ${skew > 0 ? 'ahead of' : 'behind'} the identity platform's; tokens and TLS certificates are checked against it`, 'synchronise the clock with NTP: timedatectl set-ntp true (or the box\'s NTP setting)');
  } else {
    report.ok('clock', `within ${Math.max(1, Math.abs(seconds))} s of the identity platform's clock`);
  }
}
