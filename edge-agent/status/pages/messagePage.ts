import type { DeliveryEvent } from '../../../delivery/history/deliveryEvent.ts';
import { describeEvent } from '../../../delivery/history/describeEvent.ts';
import { html, type Html } from './html.ts';
import { bytes, when } from './format.ts';
import { statusBadge } from './listPage.ts';
import type { MessageStatus } from '../consoleModel.ts';

export type OperatorAction = 'resend' | 'release' | 'delete';

export const ACTION_LABELS: Record<OperatorAction, string> = {
  resend: 'Resend',
  release: 'Try again now',
  delete: 'Delete',
};

export interface MessageView {
  id: string;
  status: MessageStatus;
  receivedAt: string;
  device: string;
  ip: string;
  helo: string;
  mailFrom: string;
  sendAs?: string;
  recipients: string[];
  delivered: string[];
  size: number;
  lastReply?: string;
  reason?: string;
  nextAttemptAt?: string;
  fix?: string;
  headers?: { fields: [string, string][]; cut: boolean };
  history: DeliveryEvent[];
  actions: OperatorAction[];
  /** The operator presented a credential: the body may be shown on request. */
  canSeeBody: boolean;
  notice?: string;
}

function holdExplanation(view: MessageView): Html {
  if (view.status === 'held') {
    return html`<div class="fixbox" id="fix"><strong>This message is held until you fix the cause${view.reason ? html`: ${view.reason}` : ''}.</strong> It is tried again every few hours and never expires.
${view.fix ? html`<code>${view.fix}</code>` : ''}
<div class="muted">After the fix, use “${ACTION_LABELS.release}” to send it at once.</div></div>`;
  }
  if (view.status === 'failed') {
    return html`<div class="fixbox" id="fix"><strong>Delivery was given up:</strong> ${view.reason ?? ''}${view.lastReply ? html`<br><span class="muted">${view.lastReply}</span>` : ''}
${view.fix ? html`<code>${view.fix}</code>` : ''}
<div class="muted">Once the cause is fixed, “${ACTION_LABELS.resend}” sends it again to the recipients that did not get it.</div></div>`;
  }
  return html``;
}

export function messagePage(view: MessageView): Html {
  return html`<h1>Message ${view.id}</h1>
${view.notice ? html`<div class="notice done" id="notice">${view.notice}</div>` : ''}
<p>${statusBadge(view.status)}</p>
${holdExplanation(view)}
${view.actions.length > 0
  ? html`<div class="actions">${view.actions.map(
      (a) => html`<a class="button ${a === 'delete' ? 'danger' : ''}" href="/messages/${view.id}/confirm?action=${a}">${ACTION_LABELS[a]}…</a>`,
    )}</div>`
  : ''}
<h2>Envelope</h2>
<dl class="facts">
  <dt>Received</dt><dd>${when(view.receivedAt)}</dd>
  <dt>Device</dt><dd>${view.device} (${view.ip}), HELO ${view.helo || '—'}</dd>
  <dt>MAIL FROM</dt><dd>${view.mailFrom || '<>'}</dd>
  ${view.sendAs ? html`<dt>Sent as</dt><dd>${view.sendAs}</dd>` : ''}
  <dt>Recipients</dt><dd>${view.recipients.join(', ')}</dd>
  ${view.delivered.length > 0 ? html`<dt>Delivered to</dt><dd>${view.delivered.join(', ')}</dd>` : ''}
  <dt>Size</dt><dd>${bytes(view.size)}</dd>
  ${view.nextAttemptAt && (view.status === 'retrying' || view.status === 'held') ? html`<dt>Next attempt</dt><dd>${when(view.nextAttemptAt)}</dd>` : ''}
  ${view.lastReply ? html`<dt>Last reply</dt><dd>${view.lastReply}</dd>` : ''}
</dl>
${view.headers
  ? html`<h2>Headers</h2>
<table id="headers"><tbody>${view.headers.fields.map(([name, value]) => html`<tr><th>${name}</th><td>${value}</td></tr>`)}</tbody></table>
${view.headers.cut ? html`<p class="muted">The header section goes on beyond the first 64 KB; the rest is not shown.</p>` : ''}
<p class="muted">${view.canSeeBody ? html`<a href="/messages/${view.id}/body">Download the whole message</a> (body included; the download is logged).` : 'The body is not shown. Configure status.auth and sign in to download a message.'}</p>`
  : html`<p class="muted">The message itself is no longer kept; its history is.</p>`}
<h2>History</h2>
<ol class="history" id="history">
${view.history.map((event) => {
  const { label, text } = describeEvent(event);
  return html`<li><span class="when">${when(event.at)}</span><span class="what">${label}</span><span>${text}</span></li>`;
})}
</ol>`;
}
