import type { UpstreamConfigInput } from '../../delivery/upstreamConfig.ts';

/** What the fake upstream process reports: counts since the last reset. */
export interface UpstreamStats {
  /** Messages accepted. */
  count: number;
  /** Their bytes, as received. */
  bytes: number;
  /** When the last one was accepted (epoch ms), 0 when none. */
  lastAt: number;
  /** 432 (throttling) replies sent. */
  throttled: number;
  /** The last few 4xx/5xx replies sent, and how many in all. */
  errorReplies: string[];
  errorCount: number;
  /** Most SMTP sessions open at once since the last reset. */
  maxConcurrentSessions: number;
}

export type UpstreamRequest =
  | { type: 'reset'; id: number }
  | { type: 'stats'; id: number }
  | { type: 'wait'; id: number; count: number; timeoutMs: number };

export type UpstreamReply =
  | { type: 'ready'; port: number; upstream: UpstreamConfigInput; basicUser: string; basicPassword: string }
  | { type: 'done'; id: number; stats: UpstreamStats; error?: string };
