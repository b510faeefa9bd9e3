import { access, constants } from 'node:fs/promises';
import type { AgentMetrics } from './metrics.ts';
import type { RelayActivity } from './relayActivity.ts';
import { textReply, type Route } from './statusServer.ts';

export interface HealthSources {
  activity: RelayActivity;
  metrics: AgentMetrics;
  /** The SMTP intake is accepting connections. */
  intakeListening: () => boolean;
  /** The spool's queue folder, which must be writable. */
  queueDir: string;
  readyWindowMs: number;
  /** Throws SpoolFullError when the spool is at spool.maxBytes. */
  checkCapacity: () => void;
}

/** /healthz (the process answers), /readyz (it can take and deliver mail) and /metrics. */
export function healthRoutes(sources: HealthSources): Route[] {
  return [
    { path: ['healthz'], open: true, methods: { GET: () => textReply(200, 'ok') } },
    {
      path: ['readyz'],
      open: true,
      methods: {
        GET: async () => {
          const problems: string[] = [];
          if (!sources.intakeListening()) problems.push('the SMTP intake is not listening');
          try {
            await access(sources.queueDir, constants.W_OK);
            sources.checkCapacity();
          } catch (error) {
            problems.push(`the spool cannot take mail: ${(error as Error).message}`);
          }
          const upstream = sources.activity.upstreamProblem(sources.readyWindowMs);
          if (upstream) problems.push(upstream);
          return problems.length === 0 ? textReply(200, 'ready') : textReply(503, `not ready: ${problems.join('; ')}`);
        },
      },
    },
    {
      path: ['metrics'],
      methods: { GET: async () => ({ status: 200, headers: { 'content-type': sources.metrics.contentType }, body: await sources.metrics.text() }) },
    },
  ];
}
