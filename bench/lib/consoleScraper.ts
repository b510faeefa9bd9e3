import { percentile } from './smtpLoad.ts';

/**
 * What an operator's monitoring does to the status listener: Prometheus scraping /metrics, an
 * uptime monitor on /readyz and the console's overview reloaded, each once a second. Issue 12's
 * promise is that this costs SMTP intake nothing measurable. The queue and failed lists read every
 * listed message from the spool and are opened by a person, not polled: not part of it.
 */
export const SCRAPED_PATHS = ['/metrics', '/readyz', '/'] as const;
const SCRAPE_INTERVAL_MS = 1000;

export interface ScrapeReport {
  /** Requests answered 200. */
  ok: number;
  /** Requests that failed or were answered with anything but 200. */
  failed: number;
  /** The slowest 1 % of answers, in milliseconds. */
  p99Ms: number;
  /** The largest body seen for each path, in bytes (a queue page that grows with the spool shows here). */
  largestBytes: Record<string, number>;
}

/** Fetches each SCRAPED_PATHS once, one after the other; throws unless all answer 200. */
export async function scrapeOnce(port: number): Promise<void> {
  for (const path of SCRAPED_PATHS) {
    const response = await fetch(`http://127.0.0.1:${port}${path}`, { signal: AbortSignal.timeout(10_000) });
    await response.arrayBuffer();
    if (response.status !== 200) throw new Error(`${path} answered ${response.status}`);
  }
}

export interface ConsoleScraper {
  stop(): Promise<ScrapeReport>;
}

/** Fetches every SCRAPED_PATHS on `port` once a second until stopped; a slow answer delays the next round, as a scraper would. */
export function scrapeConsole(port: number): ConsoleScraper {
  const latencies: number[] = [];
  const largestBytes: Record<string, number> = {};
  let ok = 0;
  let failed = 0;
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let round: Promise<void> = Promise.resolve();
  const fetchOne = async (path: string) => {
    const started = performance.now();
    try {
      const response = await fetch(`http://127.0.0.1:${port}${path}`, { signal: AbortSignal.timeout(10_000) });
      const body = Buffer.from(await response.arrayBuffer());
      latencies.push(performance.now() - started);
      largestBytes[path] = Math.max(largestBytes[path] ?? 0, body.length);
      if (response.status === 200) ok++;
      else failed++;
    } catch {
      failed++;
    }
  };
  const tick = () => {
    round = Promise.all(SCRAPED_PATHS.map(fetchOne)).then(() => {
      if (!stopped) timer = setTimeout(tick, SCRAPE_INTERVAL_MS);
    });
  };
  tick();
  return {
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await round;
      return { ok, failed, p99Ms: percentile([...latencies].sort((a, b) => a - b), 99), largestBytes };
    },
  };
}
