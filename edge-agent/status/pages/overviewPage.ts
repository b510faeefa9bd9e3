import { html, type Html } from './html.ts';
import { bytes, plural, when } from './format.ts';

export interface Overview {
  working: boolean;
  /** One sentence: "Working: …" or "Not working because …". */
  sentence: string;
  /** What to change, when the relay knows it. */
  fix?: string;
  queued: number;
  held: number;
  failed: number;
  lastAcceptedAt?: number;
  lastDeliveredAt?: number;
  oldestQueuedAt?: number;
  diskUse: Record<string, number>;
  upstream: string;
}

export function overviewPage(o: Overview): Html {
  const card = (href: string, n: number, label: string, tone: string) => html`<a class="card ${n > 0 ? tone : ''}" href="${href}"><div class="n">${n}</div><div class="l">${label}</div></a>`;
  return html`<h1>Overview</h1>
<div class="banner ${o.working ? 'ok' : 'bad'}" id="overview-sentence">${o.sentence}${o.fix ? html`<span class="fix"><strong>Fix:</strong> <code>${o.fix}</code></span>` : ''}</div>
<div class="cards">
  ${card('/queue', o.queued, 'queued (waiting or being delivered)', 'warn')}
  ${card('/queue?status=held', o.held, 'held for you (need a fix)', 'bad')}
  ${card('/failed', o.failed, 'failed (need a decision)', 'bad')}
</div>
<h2>Activity</h2>
<dl class="facts">
  <dt>Delivers to</dt><dd>${o.upstream}</dd>
  <dt>Last delivery</dt><dd>${o.lastDeliveredAt ? when(o.lastDeliveredAt) : 'none since the relay started'}</dd>
  <dt>Last message received</dt><dd>${o.lastAcceptedAt ? when(o.lastAcceptedAt) : 'none since the relay started'}</dd>
  <dt>Oldest queued message</dt><dd>${o.oldestQueuedAt ? when(o.oldestQueuedAt) : 'the queue is empty'}</dd>
  <dt>Disk use</dt><dd>${Object.entries(o.diskUse).map(([area, n], i) => html`${i > 0 ? ', ' : ''}${area} ${bytes(n)}`)}</dd>
</dl>
<p class="muted">${plural(o.queued, 'message')} in the queue. Trace a message from the command line with <code>smarthost trace --to alice@contoso.com</code>.</p>`;
}
