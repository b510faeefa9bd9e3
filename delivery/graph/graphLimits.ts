import { setTimeout as delay } from 'node:timers/promises';
import { SendRate } from '../sendRate.ts';

/**
 * Microsoft Graph's Outlook service limits, per app ID and mailbox:
 * https://learn.microsoft.com/en-us/graph/throttling-limits#outlook-service-limits
 * (10,000 requests in 10 minutes, 4 concurrent requests, 150 MB of upload (PATCH, POST, PUT) in
 * 5 minutes; over them Graph answers 429 with Retry-After). The request size limit is from the
 * sendMail documentation: 4 MB per request, measured on the base64 body.
 */
export const GRAPH_MAILBOX_LIMITS = {
  concurrentRequests: 4,
  requests: 10_000,
  requestsWindowMs: 10 * 60_000,
  /** Decimal megabytes: the smaller reading of "150 MB". */
  uploadBytes: 150 * 1000 * 1000,
  uploadWindowMs: 5 * 60_000,
  maxRequestBytes: 4 * 1024 * 1024,
} as const;

/** The largest MIME that fits one sendMail request once base64 has grown it by a third (3 MiB). */
export const GRAPH_MAX_MIME_BYTES = Math.floor(GRAPH_MAILBOX_LIMITS.maxRequestBytes / 4) * 3;

/** Graph sent 429 or 503 without Retry-After: wait as long as the first retry step would. */
export const GRAPH_DEFAULT_RETRY_AFTER_MS = 60_000;

/**
 * The longest a submission waits inside the submitter for the mailbox's pause or budgets; past it
 * the attempt is deferred without a request, so a delivery is never "in flight" for minutes (the
 * embedded loop's shutdown and the Lambda's timeout do not wait that long).
 */
export const GRAPH_LIMIT_WAIT_MAX_MS = 60_000;

/** Nothing was sent: the mailbox's pause or budget would make this submission wait too long. */
export class GraphMailboxBusyError extends Error {
  constructor(
    readonly mailbox: string,
    readonly until: number,
    readonly why: 'retry-after' | 'requests' | 'upload',
  ) {
    super(
      why === 'retry-after'
        ? `Graph asked to leave ${mailbox} alone until ${new Date(until).toISOString()} (Retry-After); not sent`
        : `Graph's ${why === 'requests' ? `${GRAPH_MAILBOX_LIMITS.requests} requests per 10 minutes` : '150 MB of upload per 5 minutes'} for ${mailbox} are used up until ${new Date(until).toISOString()}; not sent`,
    );
    this.name = 'GraphMailboxBusyError';
  }
}

/** Bytes sent in a sliding window (Graph counts upload per 5 minutes). */
export class ByteWindow {
  private readonly entries: { at: number; bytes: number }[] = [];
  private total = 0;

  constructor(
    private readonly limitBytes: number,
    private readonly windowMs: number,
  ) {}

  /** When `bytes` more fit the window (now when they do). A request larger than the whole budget waits for an empty window. */
  fitsAt(bytes: number, now = Date.now()): number {
    this.forget(now);
    let total = this.total;
    if (total === 0 || total + bytes <= this.limitBytes) return now;
    for (const entry of this.entries) {
      total -= entry.bytes;
      if (total === 0 || total + bytes <= this.limitBytes) return entry.at + this.windowMs;
    }
    return now;
  }

  add(bytes: number, now = Date.now()): void {
    this.entries.push({ at: now, bytes });
    this.total += bytes;
  }

  private forget(now: number): void {
    while (this.entries.length > 0 && (this.entries[0] as { at: number }).at <= now - this.windowMs) {
      this.total -= (this.entries.shift() as { bytes: number }).bytes;
    }
  }
}

export interface GraphLimiterSettings {
  /** `upstream.rateLimit.perMinute` (after sharing); absent when the caller schedules (the spool delivery loop). */
  perMinute?: number;
  /** Processes sending for this app and mailbox at once (Lambda instances): each takes its part of Graph's limits. */
  sharedBy: number;
  /** The per-minute rate's window; shorter only in tests. */
  rateWindowMs?: number;
}

/**
 * One app's limits on one mailbox inside this process: Graph's request, concurrency and upload
 * budgets, the relay's own per-minute rate (SendRate, as on the SMTP route), and the pause Graph
 * asked for with Retry-After, which holds every later send to the mailbox, not only the
 * throttled message. Shared by every submitter of the same app and mailbox (a rotated secret
 * builds a new submitter; the pause and the counts stay).
 */
export class GraphMailboxLimiter {
  readonly concurrentRequests: number;
  readonly requestsPerWindow: number;
  readonly uploadBytesPerWindow: number;
  readonly perMinute: number | undefined;
  readonly sharedBy: number;
  private readonly requests: SendRate;
  private readonly upload: ByteWindow;
  private readonly rate: SendRate | undefined;
  private pausedUntil = 0;
  private running = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(
    readonly mailbox: string,
    settings: GraphLimiterSettings,
  ) {
    const share = (value: number) => Math.max(1, Math.floor(value / Math.max(1, settings.sharedBy)));
    this.concurrentRequests = share(GRAPH_MAILBOX_LIMITS.concurrentRequests);
    this.requestsPerWindow = share(GRAPH_MAILBOX_LIMITS.requests);
    this.uploadBytesPerWindow = share(GRAPH_MAILBOX_LIMITS.uploadBytes);
    this.perMinute = settings.perMinute;
    this.sharedBy = settings.sharedBy;
    this.requests = new SendRate(this.requestsPerWindow, GRAPH_MAILBOX_LIMITS.requestsWindowMs);
    this.upload = new ByteWindow(this.uploadBytesPerWindow, GRAPH_MAILBOX_LIMITS.uploadWindowMs);
    this.rate = settings.perMinute === undefined ? undefined : new SendRate(settings.perMinute, settings.rateWindowMs);
  }

  /** Until when Graph asked to be left alone (0: no pause). */
  get pauseUntil(): number {
    return this.pausedUntil > Date.now() ? this.pausedUntil : 0;
  }

  /** Graph answered 429 or 503: nothing more to this mailbox before `until`. */
  pause(until: number): void {
    this.pausedUntil = Math.max(this.pausedUntil, until);
  }

  /**
   * Waits for the pause, the relay's per-minute rate (messages only), a request slot and the
   * upload budget, then for one of the concurrent requests; returns its release. Throws
   * GraphMailboxBusyError, having taken nothing, when that would be longer than `maxWaitMs`.
   */
  async acquire(request: { bodyBytes: number; message: boolean }, maxWaitMs = GRAPH_LIMIT_WAIT_MAX_MS): Promise<() => void> {
    const deadline = Date.now() + maxWaitMs;
    for (;;) {
      const now = Date.now();
      const blockers: [number, GraphMailboxBusyError['why']][] = [
        [this.pausedUntil, 'retry-after'],
        [this.requests.nextSlotAt(now), 'requests'],
        [this.upload.fitsAt(request.bodyBytes, now), 'upload'],
      ];
      const [until, why] = blockers.reduce((a, b) => (b[0] > a[0] ? b : a));
      if (until > deadline) throw new GraphMailboxBusyError(this.mailbox, until, why);
      if (until > now) {
        await delay(until - now);
        continue;
      }
      const rateAt = request.message && this.rate ? this.rate.nextSlotAt(now) : now;
      if (rateAt > now) {
        // The relay's own rate is a wait, never a refusal: Exchange's 30 a minute, as on the SMTP route.
        await delay(rateAt - now);
        continue;
      }
      if (this.running >= this.concurrentRequests) {
        await new Promise<void>((resolve) => this.waiting.push(resolve));
        continue;
      }
      const rated = request.message && this.rate ? this.rate.tryTake(now) : false;
      this.requests.tryTake(now);
      this.upload.add(request.bodyBytes, now);
      this.running++;
      let released = false;
      return () => {
        if (released) return;
        released = true;
        // Graph answered: Exchange's minute for this message runs from now (SendRate.settle).
        if (rated) this.rate?.settle(now);
        this.running--;
        this.waiting.shift()?.();
      };
    }
  }
}

const limiters = new Map<string, GraphMailboxLimiter>();

/** The process's limiter for one app on one mailbox at one Graph endpoint; the first caller's settings stay. */
export function graphMailboxLimiter(key: { baseUrl: string; appId: string; mailbox: string }, settings: GraphLimiterSettings): GraphMailboxLimiter {
  const id = `${key.baseUrl}|${key.appId}|${key.mailbox.toLowerCase()}`;
  const known = limiters.get(id);
  if (known && known.perMinute === settings.perMinute && known.sharedBy === settings.sharedBy) return known;
  const limiter = new GraphMailboxLimiter(key.mailbox, settings);
  // New settings (a changed secret): Graph's pause still holds.
  if (known) limiter.pause(known.pauseUntil);
  limiters.set(id, limiter);
  return limiter;
}

/** Retry-After as Graph sends it: delta-seconds or an HTTP date; the default when absent or unreadable. */
export function retryAfterMs(header: string | null, now = Date.now()): number {
  if (header === null || header.trim() === '') return GRAPH_DEFAULT_RETRY_AFTER_MS;
  const trimmed = header.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  const at = Date.parse(trimmed);
  return Number.isNaN(at) ? GRAPH_DEFAULT_RETRY_AFTER_MS : Math.max(0, at - now);
}
